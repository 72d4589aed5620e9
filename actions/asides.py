"""What patients say beside the task: questions about the clinic, thanks, "are you a bot?",
"when is my appointment?". Answered anywhere; inside a form, the form then asks its question
again, unless the words were an answer to it after all ("Hope Price" at the name question).
"""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import ClinicAction, latest_intent, latest_text, quick_replies
from actions.manage import ManagesAppointments
from actions.parsing import (
    doctor_named,
    extract_name,
    is_question,
    parse_list_index,
    parse_slot_choice,
    parse_time_of_day,
    parse_yes_no,
    wants_any_doctor,
    wants_soonest,
)
from actions.support import texts_choice
from clinic.application import Offer
from clinic.errors import DatabaseUnavailableError, InvalidNameError, InvalidPhoneError
from clinic.faq import visit_type_named
from clinic.patients import normalize_name, normalize_phone

# Words that make a message something other than a name, whatever the NLU thought.
NOT_A_NAME = frozenset({
    "hi", "hello", "hey", "hiya", "yo", "thanks", "thank", "thx", "ty", "ok", "okay", "yes",
    "no", "yeah", "nope", "bot", "robot", "human", "please", "sorry", "what", "who", "where",
    "when", "why", "how", "help", "stop", "bye",
})  # fmt: skip
YES_NO_SLOTS = {"consent_given", "cancel_confirmed", "delete_confirmed"}


class AnswersQuestions(ManagesAppointments):
    """Answers a question about the clinic from the profile and the schedule."""

    async def answer_about_clinic(self, text: str) -> tuple[str, list]:
        """The answer, or that there is none, with a person offered; and its quick replies."""
        try:
            found = await self.core(self.app.answer_question, text, self.read_day(text))
        except DatabaseUnavailableError:
            found = None
        if found is not None:
            return found, []
        offers = [
            (self.texts.render("person_button"), "/human_handoff"),
            (self.texts.render("book_any_button"), "/book_appointment"),
        ]
        return self.texts.render("faq_unknown"), quick_replies(offers)


class ActionAnswerFaq(AnswersQuestions, ClinicAction):
    """A question about the clinic, outside any form."""

    def name(self) -> str:
        return "action_answer_faq"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        text, buttons = await self.answer_about_clinic(latest_text(tracker))
        dispatcher.utter_message(text=text, buttons=buttons or None)
        return []


class ActionAnswerAside(AnswersQuestions, ClinicAction):
    """An aside in the middle of a form: answered, then the rules repeat the form's
    question. Words that answer that question are taken as the answer instead."""

    REPLIES = {
        "greet": "aside_greet",
        "thanks": "aside_thanks",
        "bot_challenge": "aside_bot",
        "out_of_scope": "aside_out_of_scope",
        "ask_privacy": "privacy",
    }

    def name(self) -> str:
        return "action_answer_aside"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        text, asked = latest_text(tracker), tracker.get_slot("requested_slot")
        if asked and not is_question(text) and await self._answers(asked, text, tracker):
            return [SlotSet(asked, text)]  # the form, next, validates it as its answer
        intent = latest_intent(tracker) or ""
        if intent in ("refuse_texts", "accept_texts"):
            return await texts_choice(self, dispatcher, tracker, self.texts.render("carry_on"))
        if intent == "ask_clinic_info":
            reply, _ = await self.answer_about_clinic(text)  # the form's question comes next
        elif intent == "view_appointment":
            options = await self.load_options(tracker, dispatcher)
            reply = self.describe(options) if options is not None else ""
        else:
            reply = self.texts.render(self.REPLIES.get(intent, "aside_other"))
        dispatcher.utter_message(text=f"{reply} {self.texts.render('carry_on')}".strip())
        return []

    async def _answers(self, slot: str, text: str, tracker: Tracker) -> bool:
        """Whether the words fit the question the form asked."""
        if slot == "patient_name":
            return _is_name(text)
        if slot == "patient_phone":
            return _is_phone(text, self.app.settings.phone_default_region)
        if slot in YES_NO_SLOTS:
            return parse_yes_no(text, None) is not None
        if slot == "appointment_day":
            return self.read_day(text) is not None or wants_soonest(text)
        if slot == "slot_choice":
            offers = [Offer.from_code(code) for code in tracker.get_slot("offered_slots") or []]
            starts = [offer.start for offer in offers if offer]
            found = parse_slot_choice(text, starts, self.app.zone)
            return found is not None or parse_time_of_day(text) is not None
        if slot == "appointment_choice":
            options = tracker.get_slot("appointment_options") or []
            index = parse_list_index(text, len(options))
            return index is not None or self.index_on_named_day(options, text) is not None
        if slot == "visit_type":
            return visit_type_named(text, self.app.profile) is not None
        if slot == "doctor_choice":
            doctors = [(d.id, d.name) for d in await self.core(self.app.doctors)]
            return wants_any_doctor(text) or doctor_named(text, doctors) is not None
        return False


def _is_name(text: str) -> bool:
    words = re.findall(r"[^\W\d_]+", text.lower())
    if not words or len(words) > 5 or set(words) & NOT_A_NAME:
        return False
    try:
        normalize_name(extract_name(text))
    except InvalidNameError:
        return False
    return True


def _is_phone(text: str, region: str) -> bool:
    try:
        normalize_phone(text, region)
    except InvalidPhoneError:
        return sum(ch.isdigit() for ch in text) >= 7  # a number, even one that needs more
    return True
