"""A patient's own appointments: show, cancel, reschedule."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction
from rasa_sdk.types import DomainDict

from actions.answers import read_answer, read_yes_no
from actions.booking import (
    BOOKING_SLOTS,
    MANAGE_SLOTS,
    DayAndSlotValidation,
)
from actions.common import (
    ClinicAction,
    UsesClinic,
    clear,
    latest_text,
    quick_replies,
    skips_cleared,
)
from actions.parsing import parse_list_index
from clinic.errors import AppointmentNotFoundError, DatabaseUnavailableError
from clinic.templates import format_short, format_when


def _options(tracker: Tracker) -> list[dict[str, Any]] | None:
    return tracker.get_slot("appointment_options")


def _chosen(tracker: Tracker) -> dict[str, Any] | None:
    choice = tracker.get_slot("appointment_choice")
    return next((o for o in _options(tracker) or [] if str(o["id"]) == str(choice)), None)


class ManagesAppointments(UsesClinic):
    """Reads and shows the patient's upcoming appointments, kept in `appointment_options`."""

    def when(self, option: dict[str, Any]) -> str:
        return format_when(datetime.fromisoformat(option["start"]), self.app.zone)

    def short(self, option: dict[str, Any]) -> str:
        return format_short(datetime.fromisoformat(option["start"]), self.app.zone)

    async def load_options(
        self, tracker: Tracker, dispatcher: CollectingDispatcher
    ) -> list[dict[str, Any]] | None:
        """The patient's upcoming appointments as slot values; None if the database is down."""
        try:
            appointments = await self.core(self.app.appointments_of, tracker.sender_id)
        except DatabaseUnavailableError:
            self.say_unavailable(dispatcher, tracker, "load appointments")
            return None
        return [{"id": a.id, "start": a.start_at.isoformat()} for a in appointments]

    def index_on_named_day(self, options: list[dict[str, Any]], text: str) -> int | None:
        """The only listed appointment on the day the text names, if there is exactly one."""
        day = self.read_day(text)
        if day is None:
            return None
        starts = [datetime.fromisoformat(o["start"]).astimezone(self.app.zone) for o in options]
        on_day = [i for i, start in enumerate(starts) if start.date() == day]
        return on_day[0] if len(on_day) == 1 else None


class ActionShowAppointments(ManagesAppointments, ClinicAction):
    def name(self) -> str:
        return "action_show_appointments"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        options = await self.load_options(tracker, dispatcher)
        if options is None:
            return []
        if not options:
            dispatcher.utter_message(text=self.texts.render("no_appointments"))
        elif len(options) == 1:
            dispatcher.utter_message(
                text=self.texts.render("your_appointment", when=self.when(options[0]))
            )
        else:
            lines = [self.texts.render("your_appointments")]
            lines += [f"- {self.when(o)}" for o in options]
            dispatcher.utter_message(text="\n".join(lines))
        return []


class _StartManaging(ManagesAppointments, ClinicAction, ABC):
    """Loads the patient's appointments. The one meant is known when there is only one,
    or when the message names the day of exactly one ("cancel the one on monday")."""

    moves_the_choice = False

    @abstractmethod
    def name(self) -> str: ...

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        options = await self.load_options(tracker, dispatcher)
        events = [
            *clear(tracker, *MANAGE_SLOTS, *BOOKING_SLOTS),
            SlotSet("appointment_options", options),
        ]
        meant = self._meant(options or [], latest_text(tracker))
        if meant is not None:
            events.append(SlotSet("appointment_choice", meant))
            if self.moves_the_choice:
                events.append(SlotSet("rescheduling_id", meant))
        return events

    def _meant(self, options: list[dict[str, Any]], text: str) -> str | None:
        if len(options) == 1:
            return str(options[0]["id"])
        index = self.index_on_named_day(options, text)
        return None if index is None else str(options[index]["id"])


class ActionStartCancel(_StartManaging):
    def name(self) -> str:
        return "action_start_cancel"


class ActionStartReschedule(_StartManaging):
    moves_the_choice = True

    def name(self) -> str:
        return "action_start_reschedule"


class _ChooseAppointment(ManagesAppointments):
    """Reads which of the listed appointments the patient means; with none, asks nothing."""

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        return domain_slots if _options(tracker) else []

    async def extract_appointment_choice(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return read_answer(tracker, "appointment_choice")

    @skips_cleared
    def validate_appointment_choice(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        options = _options(tracker) or []
        if any(str(o["id"]) == str(value) for o in options):
            return {"appointment_choice": str(value)}
        index = parse_list_index(str(value), len(options))
        if index is None:
            index = self.index_on_named_day(options, str(value))
        if index is None:
            dispatcher.utter_message(
                text=self.texts.render("choose_number", count=str(len(options)))
            )
            return {"appointment_choice": None}
        return {"appointment_choice": str(options[index]["id"])}


class ValidateCancelForm(_ChooseAppointment, FormValidationAction):
    def name(self) -> str:
        return "validate_cancel_form"

    async def extract_cancel_confirmed(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return read_yes_no(tracker, dispatcher, "cancel_confirmed", self.texts)


class ValidateRescheduleForm(_ChooseAppointment, DayAndSlotValidation, FormValidationAction):
    def name(self) -> str:
        return "validate_reschedule_form"

    @skips_cleared
    async def validate_appointment_choice(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        chosen = await super().validate_appointment_choice(value, dispatcher, tracker, domain)
        return {**chosen, "rescheduling_id": chosen["appointment_choice"]}


class ActionAskAppointmentChoice(ManagesAppointments, ClinicAction):
    def name(self) -> str:
        return "action_ask_appointment_choice"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        options = _options(tracker) or []
        lines = [self.texts.render("choose_appointment")]
        lines += [f"{number}. {self.when(o)}" for number, o in enumerate(options, 1)]
        dispatcher.utter_message(
            text="\n".join(lines),
            buttons=quick_replies([(self.short(o), str(o["id"])) for o in options]),
        )
        return []


class ActionAskCancelConfirmed(ManagesAppointments, ClinicAction):
    def name(self) -> str:
        return "action_ask_cancel_confirmed"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        chosen = _chosen(tracker)
        if chosen is None:
            return []
        question = self.texts.render("confirm_cancel", when=self.when(chosen))
        self.ask_yes_no(dispatcher, question, "cancel_yes_button", "cancel_no_button")
        return []


class ActionCancelAppointment(ManagesAppointments, ClinicAction):
    def name(self) -> str:
        return "action_cancel_appointment"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        options = _options(tracker)
        chosen = _chosen(tracker)
        if options == []:
            dispatcher.utter_message(text=self.texts.render("no_appointments"))
        elif chosen is not None and tracker.get_slot("cancel_confirmed") is False:
            dispatcher.utter_message(text=self.texts.render("kept", when=self.when(chosen)))
        elif chosen is not None and tracker.get_slot("cancel_confirmed") is True:
            await self._cancel(chosen, dispatcher, tracker)
        return clear(tracker, *MANAGE_SLOTS)

    async def _cancel(
        self, chosen: dict, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> None:
        try:
            await self.core(self.app.cancel_for, tracker.sender_id, int(chosen["id"]))
        except AppointmentNotFoundError:
            dispatcher.utter_message(text=self.texts.render("already_cancelled"))
            return
        except DatabaseUnavailableError:
            self.say_unavailable(dispatcher, tracker, "cancel")
            return
        dispatcher.utter_message(text=self.texts.render("cancelled", when=self.when(chosen)))
