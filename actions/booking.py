"""Booking: start the flow, ask for a day and a slot, read the answers, book."""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction
from rasa_sdk.types import DomainDict

from actions.answers import read_answer
from actions.common import (
    ClinicAction,
    UsesClinic,
    clear,
    latest_intent,
    latest_text,
    message_time,
    named_values,
    quick_replies,
    skips_cleared,
)
from actions.parsing import find_clock_time, parse_slot_choice
from clinic.errors import (
    AppointmentNotFoundError,
    DatabaseUnavailableError,
    NotConsentedError,
    SlotTakenError,
    SlotUnavailableError,
    UnknownDoctorError,
)
from clinic.templates import format_day, format_time

logger = logging.getLogger(__name__)

DAYS_OFFERED = 5
BOOKING_SLOTS = [
    "appointment_day",
    "preferred_time",
    "slot_choice",
    "offered_slots",
    "slot_taken",
    "rescheduling_id",
]
MANAGE_SLOTS = ["appointment_options", "appointment_choice", "cancel_confirmed"]


class ActionStartBooking(ClinicAction):
    """Starts over cleanly, keeps a day named in the first message, knows returning patients."""

    def name(self) -> str:
        return "action_start_booking"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        events = clear(tracker, *BOOKING_SLOTS, "patient_name", "patient_phone", "consent_given")
        text = latest_text(tracker)
        named = named_values(tracker)
        day = self.read_day(named.get("appointment_day") or text)
        if day is not None and latest_intent(tracker) in {"book_appointment", "give_date_time"}:
            events.append(SlotSet("appointment_day", day.isoformat()))
            # "tomorrow at 3pm": that time is booked straight away if it is free.
            wanted = named.get("preferred_time") or find_clock_time(text)
            events.append(SlotSet("preferred_time", wanted))
        try:
            patient = await self.core(self.app.patient, tracker.sender_id)
        except DatabaseUnavailableError:
            patient = None
        if patient is not None and patient.on_file:
            events.append(SlotSet("consent_given", True))
        return events


class DayAndSlotValidation(UsesClinic):
    """Reads the day and slot answers; shared by the booking and reschedule forms."""

    async def extract_appointment_day(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return read_answer(tracker, "appointment_day")

    async def extract_slot_choice(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return read_answer(tracker, "slot_choice")

    @skips_cleared
    async def validate_appointment_day(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        day = self._checked_day(str(value), dispatcher)
        if day is None:
            return {"appointment_day": None, "preferred_time": None}
        answer = {
            "appointment_day": day.isoformat(),
            "slot_choice": None,
            "offered_slots": None,
            "preferred_time": None,
        }
        wanted = find_clock_time(str(value)) or tracker.get_slot("preferred_time")
        if wanted:
            answer["slot_choice"] = await self._free_slot_at(day, wanted, dispatcher)
        return answer

    @skips_cleared
    async def validate_slot_choice(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        offered = [datetime.fromisoformat(s) for s in tracker.get_slot("offered_slots") or []]
        chosen = parse_slot_choice(str(value), offered, self.app.zone)
        if chosen is not None:
            return {"slot_choice": chosen.isoformat()}
        current_day = tracker.get_slot("appointment_day")
        other_day = self.read_day(str(value))
        if other_day is not None and other_day.isoformat() != current_day:
            # The patient changed their mind about the day.
            day = self._checked_day(str(value), dispatcher)
            if day is not None:
                return {
                    "appointment_day": day.isoformat(),
                    "slot_choice": None,
                    "offered_slots": None,
                }
            return {"slot_choice": None}
        if offered:
            example = format_time(offered[min(1, len(offered) - 1)], self.app.zone)
            dispatcher.utter_message(
                text=self.texts.render("slot_reprompt", count=str(len(offered)), example=example)
            )
        return {"slot_choice": None}

    def _checked_day(self, text: str, dispatcher: CollectingDispatcher) -> date | None:
        """The day a patient named, if it can be booked; otherwise says why and returns None."""
        day = self.read_day(text)
        if day is None:
            dispatcher.utter_message(text=self.texts.render("unreadable_day"))
            return None
        if day < self.app.today():
            dispatcher.utter_message(text=self.texts.render("day_past", day=format_day(day)))
            return None
        last_day = self.app.last_bookable_day()
        if day > last_day:
            dispatcher.utter_message(
                text=self.texts.render("day_too_far", last_day=format_day(last_day))
            )
            return None
        return day

    async def _free_slot_at(
        self, day: date, wanted: str, dispatcher: CollectingDispatcher
    ) -> str | None:
        """The free slot of `day` at the time the patient named; says so when it is not free."""
        try:
            free = await self.core(self.app.slots_on, day)
        except (DatabaseUnavailableError, UnknownDoctorError):
            return None  # the slot list will say that the system can't be reached
        chosen = parse_slot_choice(wanted, free, self.app.zone)
        if chosen is None:
            dispatcher.utter_message(
                text=self.texts.render(
                    "time_not_free", time=wanted.removeprefix("at ").strip(), day=format_day(day)
                )
            )
            return None
        return chosen.isoformat()


class ValidateBookingForm(DayAndSlotValidation, FormValidationAction):
    def name(self) -> str:
        return "validate_booking_form"


class ActionAskAppointmentDay(ClinicAction):
    def name(self) -> str:
        return "action_ask_appointment_day"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        today = self.app.today()
        try:
            days = await self.core(self.app.days_with_slots, today, DAYS_OFFERED)
        except (DatabaseUnavailableError, UnknownDoctorError):
            self.say_unavailable(dispatcher, tracker, "ask day")
            return []
        if not days:
            say_no_free_days(self, dispatcher, today)
            return []
        dispatcher.utter_message(
            text=self.texts.render("ask_day"),
            buttons=quick_replies([(format_day(d), d.isoformat()) for d in days]),
        )
        return []


class ActionAskSlotChoice(ClinicAction):
    """Lists the day's free times; a full day moves on to the next day that has some."""

    def name(self) -> str:
        return "action_ask_slot_choice"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        day = date.fromisoformat(tracker.get_slot("appointment_day"))
        just_taken = bool(tracker.get_slot("slot_taken"))
        try:
            found = await self.core(self.app.first_day_with_slots, day)
        except (DatabaseUnavailableError, UnknownDoctorError):
            self.say_unavailable(dispatcher, tracker, "ask slot")
            return [SlotSet("offered_slots", [])]
        if found is None:
            say_no_free_days(self, dispatcher, day)
            return [SlotSet("offered_slots", []), SlotSet("slot_taken", False)]
        header = self._slot_list_header(day, found.day, just_taken)
        text, buttons = self.numbered_times(header, found.slots)
        dispatcher.utter_message(text=text, buttons=buttons)
        return [
            SlotSet("appointment_day", found.day.isoformat()),
            SlotSet("offered_slots", [slot.isoformat() for slot in found.slots]),
            SlotSet("slot_taken", False),
        ]

    def _slot_list_header(self, asked_day: date, shown_day: date, just_taken: bool) -> str:
        day, next_day = format_day(asked_day), format_day(shown_day)
        if shown_day != asked_day:
            name = "slot_taken_day_full" if just_taken else "day_full_next"
            return self.texts.render(name, day=day, next_day=next_day)
        return self.texts.render("slot_taken" if just_taken else "slots_for_day", day=day)


def say_no_free_days(uses: UsesClinic, dispatcher: CollectingDispatcher, from_day: date) -> None:
    last_day = uses.app.last_bookable_day()
    dispatcher.utter_message(
        text=uses.texts.render(
            "no_free_days", day=format_day(from_day), last_day=format_day(last_day)
        )
    )


class ActionBookAppointment(ClinicAction):
    """Books (or moves) the chosen slot; a slot lost to someone else is offered again."""

    def name(self) -> str:
        return "action_book_appointment"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        choice = tracker.get_slot("slot_choice")
        moving = tracker.get_slot("rescheduling_id")
        finished = clear(tracker, *BOOKING_SLOTS, *MANAGE_SLOTS)
        if not choice:
            if tracker.get_slot("appointment_options") == []:  # asked to move, has none
                dispatcher.utter_message(text=self.texts.render("no_appointments"))
            return finished
        start = datetime.fromisoformat(choice)
        message_at = message_time(tracker) or self.app.now()
        try:
            booked = await self.core(
                self.app.book_for,
                tracker.sender_id,
                start,
                message_at,
                int(moving) if moving else None,
            )
        except (SlotTakenError, SlotUnavailableError):
            logger.info("slot lost before booking chat=%s", self.chat_ref(tracker))
            return [*clear(tracker, "slot_choice", "offered_slots"), SlotSet("slot_taken", True)]
        except NotConsentedError:
            dispatcher.utter_message(text=self.texts.render("need_consent"))
            return finished
        except AppointmentNotFoundError:
            dispatcher.utter_message(text=self.texts.render("appointment_gone"))
            return finished
        except (DatabaseUnavailableError, UnknownDoctorError):
            self.say_unavailable(dispatcher, tracker, "book")
            return finished
        dispatcher.utter_message(
            text=self.texts.confirmation(
                booked.appointment.start_at, booked.zone, booked.reminder_deliverable, booked.moved
            )
        )
        return finished
