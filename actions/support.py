"""Leaving a flow, asking for a person, answering asides, deleting one's data."""

from __future__ import annotations

import json
import logging
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet, UserUtteranceReverted
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction
from rasa_sdk.types import DomainDict

from actions.answers import yes_no_answer
from actions.booking import BOOKING_SLOTS, MANAGE_SLOTS
from actions.common import (
    BOOKING_FORMS,
    ClinicAction,
    FormQuestion,
    UsesClinic,
    clear,
    form_stopped_this_turn,
    latest_intent,
    latest_text,
    quick_replies,
)
from actions.parsing import find_clock_time
from clinic.errors import DatabaseUnavailableError
from clinic.templates import format_day, format_when

logger = logging.getLogger(__name__)

FLOW_SLOTS = [*BOOKING_SLOTS, *MANAGE_SLOTS, "patient_name", "patient_phone", "delete_confirmed"]


class ActionStopFlow(ClinicAction):
    def name(self) -> str:
        return "action_stop_flow"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        if form_stopped_this_turn(tracker) in BOOKING_FORMS:
            dispatcher.utter_message(text=self.texts.render("stopped_booking"))
        else:
            dispatcher.utter_message(text=self.texts.render("stopped"))
        return clear(tracker, *FLOW_SLOTS, "consent_given")


class ActionHandoff(ClinicAction):
    """Records that the patient wants a person; the channel passes the conversation to the
    Instagram inbox with this message (`thread_control`) and the bot keeps quiet for them."""

    def name(self) -> str:
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        return await hand_off(self, dispatcher, tracker, "handoff")


async def hand_off(
    action: ClinicAction, dispatcher: CollectingDispatcher, tracker: Tracker, text: str
) -> list[dict[str, Any]]:
    """Records the hand-off and says `text`; the channel passes the conversation on with it."""
    try:
        await action.core(action.app.request_handoff, tracker.sender_id)
    except DatabaseUnavailableError:
        logger.warning("handoff not recorded, database down chat=%s", action.chat_ref(tracker))
    dispatcher.utter_message(text=action.texts.render(text), thread_control="pass")
    return clear(tracker, *FLOW_SLOTS)


class ActionTextsChoice(ClinicAction):
    """ "No texts", or "you can text me": stored (or, before the patient's details, kept in
    the conversation until they are); reminders then go only by Instagram, or by text too."""

    def name(self) -> str:
        return "action_texts_choice"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        return await texts_choice(self, dispatcher, tracker)


async def texts_choice(
    action: ClinicAction, dispatcher: CollectingDispatcher, tracker: Tracker, after: str = ""
) -> list[dict[str, Any]]:
    """Stores what the patient said about texts and says so (then `after`, the form's way
    back to its question)."""
    takes_texts = latest_intent(tracker) == "accept_texts"
    try:
        await action.core(action.app.choose_texts, tracker.sender_id, takes_texts)
    except DatabaseUnavailableError:
        action.say_unavailable(dispatcher, tracker, "texts choice")
        return []
    if not takes_texts:
        answer = "texts_refused"
    else:
        answer = "texts_accepted" if action.app.settings.sms_configured else "texts_not_offered"
    dispatcher.utter_message(text=f"{action.texts.render(answer)} {after}".strip())
    return [SlotSet("texts_refused", not takes_texts)]


class ValidateDeleteDataForm(UsesClinic, FormValidationAction):
    """Every sender is asked to confirm: one who never gave their details still has a
    conversation to erase."""

    def name(self) -> str:
        return "validate_delete_data_form"

    extract_delete_confirmed = yes_no_answer("delete_confirmed")


class ActionDeleteData(ClinicAction):
    def name(self) -> str:
        return "action_delete_data"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        if tracker.get_slot("delete_confirmed") is not True:
            kept = "kept_details" if await is_patient(self, tracker) else "kept_conversation"
            dispatcher.utter_message(text=self.texts.render(kept))
            return clear(tracker, *FLOW_SLOTS)
        try:
            erased = await self.core(self.app.erase_patient, tracker.sender_id)
        except DatabaseUnavailableError:
            self.say_unavailable(dispatcher, tracker, "delete data")
            return clear(tracker, *FLOW_SLOTS)
        if erased.details:
            zone = self.app.zone
            lines = [self.texts.render("deleted")]
            lines += [
                self.texts.render("withdrawn_cancelled", when=format_when(a.start_at, zone))
                for a in erased.cancelled
            ]
        else:
            lines = [self.texts.render("deleted_conversation")]
        dispatcher.utter_message(text=" ".join(lines))
        # The rasa server deletes this conversation instead of saving it.
        return [*clear(tracker, *FLOW_SLOTS, "consent_given"), SlotSet("conversation_erased", True)]


class ActionAskDeleteConfirmed(FormQuestion):
    """What a "yes" erases: the patient's details and conversation, or the conversation."""

    question, buttons = "ask_delete", ("delete_yes_button", "delete_no_button")

    def name(self) -> str:
        return "action_ask_delete_confirmed"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        question = "ask_delete" if await is_patient(self, tracker) else "ask_delete_conversation"
        self.ask_yes_no(dispatcher, self.texts.render(question), *self.buttons)
        return []


async def is_patient(action: ClinicAction, tracker: Tracker) -> bool:
    """Whether the sender gave their details (True when the database can't say: the
    question then names everything it could erase)."""
    try:
        return await action.core(action.app.patient, tracker.sender_id) is not None
    except DatabaseUnavailableError:
        return True


class ActionHelpAfterFallback(ClinicAction):
    """When the message was not understood, offer what it most likely meant: a booking on
    the day (and time) it names, if it names one; the patient's appointments; a person.
    The second message in a row not understood goes to a person straight away."""

    def name(self) -> str:
        return "action_help_after_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        if _not_understood_twice(tracker):
            return await hand_off(self, dispatcher, tracker, "handoff_not_understood")
        texts = self.texts
        text = latest_text(tracker)
        day = self.read_day(text)
        options = []
        if day is not None:
            entities = {"appointment_day": day.isoformat()}
            title = texts.render("book_button", day=format_day(day))
            time_named = (find_clock_time(text) or "").removeprefix("at ").strip()
            if time_named:
                entities["preferred_time"] = time_named
                title = texts.render("book_at_button", day=format_day(day), time=time_named)
            options.append((title, f"/book_appointment{json.dumps(entities)}"))
        else:
            options.append((texts.render("book_any_button"), "/book_appointment"))
        options += [
            (texts.render("show_button"), "/view_appointment"),
            (texts.render("person_button"), "/human_handoff"),
        ]
        dispatcher.utter_message(
            text=texts.render("not_understood"), buttons=quick_replies(options)
        )
        if latest_intent(tracker) != "nlu_fallback":
            # Run as the rules' fallback (config.yml: core_fallback_action_name): like Rasa's
            # own, it takes the message back, or the rules would ask for it again and again.
            return [UserUtteranceReverted()]
        return []


def _not_understood_twice(tracker: Tracker) -> bool:
    """The patient's message before this one was not understood either, and the bot
    offered help for it (rather than handing off), in this session."""
    events = list(tracker.events)
    users = [n for n, event in enumerate(events) if event.get("event") == "user"]
    if len(users) < 2:
        return False
    between = events[users[-2] + 1 : users[-1]]
    offered = any(
        e.get("event") == "action" and e.get("name") == "action_help_after_fallback"
        for e in between
    )
    handed_off = any(
        e.get("event") == "bot" and (e.get("metadata") or {}).get("thread_control") == "pass"
        for e in between
    )
    new_session = any(e.get("event") == "session_started" for e in between)
    return offered and not handed_off and not new_session
