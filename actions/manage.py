"""A patient's own appointments: show, cancel, reschedule."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction
from rasa_sdk.types import DomainDict

from actions.answers import typed_answer, yes_no_answer
from actions.booking import (
    BOOKING_SLOTS,
    MANAGE_SLOTS,
    DayAndSlotValidation,
)
from actions.common import (
    BOOKING_FORMS,
    ClinicAction,
    UsesClinic,
    clear,
    form_stopped_this_turn,
    latest_text,
    quick_replies,
    skips_cleared,
)
from actions.parsing import find_clock_time, parse_list_index, parse_time_of_day
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
        return [
            {
                "id": u.appointment.id,
                "start": u.appointment.start_at.isoformat(),
                "doctor": u.appointment.doctor_id,
                "visit": u.appointment.visit_type,
                "named": self.texts.visit_with_doctor(u.visit, u.doctor),
            }
            for u in appointments
        ]

    def describe(self, options: list[dict[str, Any]]) -> str:
        """'Your appointment is on …', the list of them, or that there is none."""
        if not options:
            return self.texts.render("no_appointments")
        if len(options) == 1:
            when = self.when(options[0]) + options[0].get("named", "")
            return self.texts.render("your_appointment", when=when)
        lines = [self.texts.render("your_appointments")]
        return "\n".join([*lines, *(f"- {self.when(o)}{o.get('named', '')}" for o in options)])

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
        if options is not None:
            dispatcher.utter_message(text=self.describe(options))
        return []


class _StartManaging(ManagesAppointments, ClinicAction, ABC):
    """Loads the patient's appointments. The one meant is known when there is only one,
    or when the message names the day of exactly one ("cancel the one on monday"). Coming
    from another form (the patient switched task), says that it was left."""

    moves_the_choice = False

    @abstractmethod
    def name(self) -> str: ...

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        if form_stopped_this_turn(tracker) in BOOKING_FORMS:
            dispatcher.utter_message(text=self.texts.render("left_booking"))
        options = await self.load_options(tracker, dispatcher)
        events = [
            *clear(tracker, *MANAGE_SLOTS, *BOOKING_SLOTS),
            SlotSet("appointment_options", options),
        ]
        which, new_time = self._parts(latest_text(tracker))
        meant = self._meant(options or [], which)
        if meant is not None:
            events.append(SlotSet("appointment_choice", meant))
            if self.moves_the_choice:
                events.append(SlotSet("rescheduling_id", meant))
                events += self._new_time(new_time or "", meant)
        return events

    def _parts(self, text: str) -> tuple[str, str | None]:
        """What names the appointment, and (for a move) what names its new time."""
        return text, None

    def _new_time(self, text: str, meant: str) -> list[dict[str, Any]]:
        return []

    def _meant(self, options: list[dict[str, Any]], text: str) -> str | None:
        if len(options) == 1:
            return str(options[0]["id"])
        index = self.index_on_named_day(options, text)
        return None if index is None else str(options[index]["id"])


class ActionStartCancel(_StartManaging):
    def name(self) -> str:
        return "action_start_cancel"


class ActionStartReschedule(_StartManaging):
    """ "move it to friday morning": the new day and time of day are taken at once."""

    moves_the_choice = True

    def name(self) -> str:
        return "action_start_reschedule"

    def _parts(self, text: str) -> tuple[str, str | None]:
        """'move my monday visit to friday morning' -> 'move my monday visit', 'friday morning'."""
        splits = list(re.finditer(r"\b(?:to|for|till|until)\b", text, re.IGNORECASE))
        if not splits:
            return text, None
        return text[: splits[-1].start()], text[splits[-1].end() :]

    def _new_time(self, text: str, meant: str) -> list[dict[str, Any]]:
        events = []
        day = self.read_day(text)
        today = self.app.today()
        if day is not None and today <= day <= self.app.last_bookable_day():
            events.append(SlotSet("appointment_day", day.isoformat()))
            wanted = find_clock_time(text)
            if wanted:
                events.append(SlotSet("preferred_time", wanted))
        time_of_day = parse_time_of_day(text)
        if time_of_day is not None:
            events.append(SlotSet("time_of_day", time_of_day))
        return events


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

    extract_appointment_choice = typed_answer("appointment_choice")

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

    extract_cancel_confirmed = yes_no_answer("cancel_confirmed")


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
