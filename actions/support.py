"""Leaving a flow, asking for a person, answering asides, deleting one's data."""

from __future__ import annotations

import json
import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction
from rasa_sdk.types import DomainDict

from actions.answers import read_yes_no
from actions.booking import BOOKING_SLOTS, MANAGE_SLOTS
from actions.common import (
    FormQuestion,
    chat_ref,
    clear,
    current_patient,
    latest_intent,
    latest_text,
    quick_replies,
    read_day,
    say_unavailable,
    templates,
)
from actions.parsing import find_clock_time
from actions.runtime import current_clinic, run_core
from clinic import audit
from clinic.db import transaction
from clinic.errors import DatabaseUnavailableError
from clinic.patients import withdraw_consent
from clinic.templates import format_day, format_when

logger = logging.getLogger(__name__)

FLOW_SLOTS = [*BOOKING_SLOTS, *MANAGE_SLOTS, "patient_name", "patient_phone", "delete_confirmed"]
BOOKING_FORMS = {"details_form", "booking_form", "reschedule_form"}


class ActionStopFlow(Action):
    def name(self) -> str:
        return "action_stop_flow"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        if _form_stopped_this_turn(tracker) in BOOKING_FORMS:
            dispatcher.utter_message(text=templates().render("stopped_booking"))
        else:
            dispatcher.utter_message(text=templates().render("stopped"))
        return clear(tracker, *FLOW_SLOTS, "consent_given")


def _form_stopped_this_turn(tracker: Tracker) -> str | None:
    """The form that was active when the patient's latest message arrived."""
    active = active_at_user_turn = None
    for event in tracker.events:
        if event.get("event") == "active_loop":
            active = event.get("name")
        if event.get("event") == "user":
            active_at_user_turn = active
    return active_at_user_turn


class ActionHandoff(Action):
    """Records that the patient wants a person; staff answer in the Instagram inbox."""

    def name(self) -> str:
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        try:
            patient = await current_patient(tracker)
            await run_core(_record_handoff, patient.id if patient else None, tracker.sender_id)
        except DatabaseUnavailableError:
            logger.warning("handoff not recorded, database down chat=%s", chat_ref(tracker))
        dispatcher.utter_message(text=templates().render("handoff"))
        return clear(tracker, *FLOW_SLOTS)


def _record_handoff(patient_id: int | None, sender_id: str) -> None:
    clinic = current_clinic()
    with transaction(clinic.engine) as session:
        audit.record(
            session,
            audit.HANDOFF_REQUESTED,
            patient_id=patient_id,
            recipient_hash=audit.hash_id(sender_id, clinic.settings.id_hash_key),
        )


class ActionAnswerAside(Action):
    """Answers a greeting, thanks, a question about the bot or an off-topic message
    in the middle of a form; the rules then repeat the form's question."""

    REPLIES = {
        "greet": "aside_greet",
        "thanks": "aside_thanks",
        "bot_challenge": "aside_bot",
        "out_of_scope": "aside_out_of_scope",
        "ask_privacy": "aside_privacy",
    }

    def name(self) -> str:
        return "action_answer_aside"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        texts = templates()
        reply = texts.render(self.REPLIES.get(latest_intent(tracker) or "", "aside_other"))
        dispatcher.utter_message(text=f"{reply} {texts.render('carry_on')}")
        return []


class ValidateDeleteDataForm(FormValidationAction):
    def name(self) -> str:
        return "validate_delete_data_form"

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        try:
            patient = await current_patient(tracker)
        except DatabaseUnavailableError:
            return []
        return domain_slots if patient is not None else []

    async def extract_delete_confirmed(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return read_yes_no(tracker, dispatcher, "delete_confirmed")


class ActionDeleteData(Action):
    def name(self) -> str:
        return "action_delete_data"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        confirmed = tracker.get_slot("delete_confirmed")
        try:
            patient = await current_patient(tracker)
            if patient is None:
                dispatcher.utter_message(text=templates().render("nothing_stored"))
                return clear(tracker, *FLOW_SLOTS, "consent_given")
            if confirmed is not True:
                dispatcher.utter_message(text=templates().render("kept_details"))
                return clear(tracker, *FLOW_SLOTS)
            cancelled = await run_core(withdraw_consent, current_clinic(), tracker.sender_id)
        except DatabaseUnavailableError:
            say_unavailable(dispatcher, tracker, "delete data")
            return clear(tracker, *FLOW_SLOTS)
        lines = [templates().render("deleted")]
        zone = current_clinic().settings.zone
        lines += [
            templates().render("withdrawn_cancelled", when=format_when(a.start_at, zone))
            for a in cancelled
        ]
        dispatcher.utter_message(text=" ".join(lines))
        return clear(tracker, *FLOW_SLOTS, "consent_given")


class ActionAskDeleteConfirmed(FormQuestion):
    question, buttons = "ask_delete", ("delete_yes_button", "delete_no_button")

    def name(self) -> str:
        return "action_ask_delete_confirmed"


class ActionHelpAfterFallback(Action):
    """When the message was not understood, offer what it most likely meant: a booking on
    the day (and time) it names, if it names one; the patient's appointments; a person."""

    def name(self) -> str:
        return "action_help_after_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        texts = templates()
        text = latest_text(tracker)
        day = read_day(text)
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
        return []
