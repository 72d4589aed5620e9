"""Booking: start the flow, ask for a day and a slot, read the answers, book."""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction
from rasa_sdk.types import DomainDict

from actions.answers import read_answer
from actions.common import (
    booking_doctor,
    chat_ref,
    clear,
    current_patient,
    latest_intent,
    latest_text,
    numbered_times,
    quick_replies,
    read_day,
    say_unavailable,
    skips_cleared,
    templates,
)
from actions.parsing import find_clock_time, parse_slot_choice
from actions.runtime import current_clinic, run_core
from clinic.availability import available_slots, first_day_with_slots, next_days_with_slots
from clinic.booking import book, reschedule
from clinic.errors import (
    AppointmentNotFoundError,
    DatabaseUnavailableError,
    NotConsentedError,
    SlotTakenError,
    SlotUnavailableError,
    UnknownDoctorError,
)
from clinic.patients import note_message
from clinic.reminders import reminder_deliverable
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


class ActionStartBooking(Action):
    """Starts over cleanly, keeps a day named in the first message, knows returning patients."""

    def name(self) -> str:
        return "action_start_booking"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        events = clear(tracker, *BOOKING_SLOTS, "patient_name", "patient_phone", "consent_given")
        text = latest_text(tracker)
        named = {
            e.get("entity"): e.get("value") for e in tracker.latest_message.get("entities", [])
        }
        day = read_day(named.get("appointment_day") or text)
        if day is not None and latest_intent(tracker) in {"book_appointment", "give_date_time"}:
            events.append(SlotSet("appointment_day", day.isoformat()))
            # "tomorrow at 3pm": that time is booked straight away if it is free.
            wanted = named.get("preferred_time") or find_clock_time(text)
            events.append(SlotSet("preferred_time", wanted))
        try:
            await run_core(note_message, current_clinic(), tracker.sender_id)
            patient = await current_patient(tracker)
        except DatabaseUnavailableError:
            patient = None
        if patient is not None and patient.has_consented and patient.has_details:
            events.append(SlotSet("consent_given", True))
        return events


class DayAndSlotValidation:
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
        day = await _checked_day(str(value), dispatcher)
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
            answer["slot_choice"] = await _free_slot_at(day, wanted, dispatcher)
        return answer

    @skips_cleared
    async def validate_slot_choice(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        # Offered starts keep the doctor's local offset, so "2:30" means their wall time.
        offered = [datetime.fromisoformat(s) for s in tracker.get_slot("offered_slots") or []]
        chosen = parse_slot_choice(str(value), offered)
        if chosen is not None:
            return {"slot_choice": chosen.isoformat()}
        current_day = tracker.get_slot("appointment_day")
        other_day = read_day(str(value))
        if other_day is not None and other_day.isoformat() != current_day:
            # The patient changed their mind about the day.
            day = await _checked_day(str(value), dispatcher)
            if day is not None:
                return {
                    "appointment_day": day.isoformat(),
                    "slot_choice": None,
                    "offered_slots": None,
                }
            return {"slot_choice": None}
        if offered:
            example = format_time(offered[min(1, len(offered) - 1)], offered[0].tzinfo)
            dispatcher.utter_message(
                text=templates().render("slot_reprompt", count=str(len(offered)), example=example)
            )
        return {"slot_choice": None}


async def _checked_day(text: str, dispatcher: CollectingDispatcher) -> date | None:
    """The day a patient named, if it can be booked; otherwise says why and returns None."""
    day = read_day(text)
    if day is None:
        dispatcher.utter_message(text=templates().render("unreadable_day"))
        return None
    if day < current_clinic().today():
        dispatcher.utter_message(text=templates().render("day_past", day=format_day(day)))
        return None
    last_day = current_clinic().last_bookable_day()
    if day > last_day:
        dispatcher.utter_message(
            text=templates().render("day_too_far", last_day=format_day(last_day))
        )
        return None
    return day


async def _free_slot_at(day: date, wanted: str, dispatcher: CollectingDispatcher) -> str | None:
    """The free slot of `day` at the time the patient named; says so when it is not free."""
    try:
        doctor = await booking_doctor()
        free = await run_core(available_slots, current_clinic(), doctor.id, day)
    except (DatabaseUnavailableError, UnknownDoctorError):
        return None  # the slot list will say that the system can't be reached
    chosen = parse_slot_choice(wanted, free)
    if chosen is None:
        dispatcher.utter_message(
            text=templates().render(
                "time_not_free", time=wanted.removeprefix("at ").strip(), day=format_day(day)
            )
        )
        return None
    return chosen.isoformat()


class ValidateBookingForm(DayAndSlotValidation, FormValidationAction):
    def name(self) -> str:
        return "validate_booking_form"


class ActionAskAppointmentDay(Action):
    def name(self) -> str:
        return "action_ask_appointment_day"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        clinic = current_clinic()
        try:
            doctor = await booking_doctor()
            days = await run_core(
                next_days_with_slots, clinic, doctor.id, clinic.today(), DAYS_OFFERED
            )
        except (DatabaseUnavailableError, UnknownDoctorError):
            say_unavailable(dispatcher, tracker, "ask day")
            return []
        if not days:
            _say_no_free_days(dispatcher, clinic.today())
            return []
        dispatcher.utter_message(
            text=templates().render("ask_day"),
            buttons=quick_replies([(format_day(d), d.isoformat()) for d in days]),
        )
        return []


class ActionAskSlotChoice(Action):
    """Lists the day's free times; a full day moves on to the next day that has some."""

    def name(self) -> str:
        return "action_ask_slot_choice"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        day = date.fromisoformat(tracker.get_slot("appointment_day"))
        just_taken = bool(tracker.get_slot("slot_taken"))
        try:
            doctor = await booking_doctor()
            found = await run_core(first_day_with_slots, current_clinic(), doctor.id, day)
        except (DatabaseUnavailableError, UnknownDoctorError):
            say_unavailable(dispatcher, tracker, "ask slot")
            return [SlotSet("offered_slots", [])]
        if found is None:
            _say_no_free_days(dispatcher, day)
            return [SlotSet("offered_slots", []), SlotSet("slot_taken", False)]
        shown_day, slots = found
        zone = ZoneInfo(doctor.timezone)
        header = _slot_list_header(day, shown_day, just_taken)
        text, buttons = numbered_times(header, slots, zone)
        dispatcher.utter_message(text=text, buttons=buttons)
        return [
            SlotSet("appointment_day", shown_day.isoformat()),
            SlotSet("offered_slots", [slot.isoformat() for slot in slots]),
            SlotSet("slot_taken", False),
        ]


def _say_no_free_days(dispatcher: CollectingDispatcher, from_day: date) -> None:
    last_day = current_clinic().last_bookable_day()
    dispatcher.utter_message(
        text=templates().render(
            "no_free_days", day=format_day(from_day), last_day=format_day(last_day)
        )
    )


def _slot_list_header(asked_day: date, shown_day: date, just_taken: bool) -> str:
    texts = templates()
    day, next_day = format_day(asked_day), format_day(shown_day)
    if shown_day != asked_day:
        name = "slot_taken_day_full" if just_taken else "day_full_next"
        return texts.render(name, day=day, next_day=next_day)
    return texts.render("slot_taken" if just_taken else "slots_for_day", day=day)


class ActionBookAppointment(Action):
    """Books (or moves) the chosen slot; a slot lost to someone else is offered again."""

    def name(self) -> str:
        return "action_book_appointment"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        clinic = current_clinic()
        choice = tracker.get_slot("slot_choice")
        moving = tracker.get_slot("rescheduling_id")
        finished = clear(tracker, *BOOKING_SLOTS, *MANAGE_SLOTS)
        if not choice:
            if tracker.get_slot("appointment_options") == []:  # asked to move, has none
                dispatcher.utter_message(text=templates().render("no_appointments"))
            return finished
        start = datetime.fromisoformat(choice)
        try:
            patient = await current_patient(tracker)
            if patient is None or not patient.has_consented:
                raise NotConsentedError("no consent on file")
            doctor = await booking_doctor()
            if moving:
                appointment = await run_core(reschedule, clinic, int(moving), patient.id, start)
            else:
                appointment = await run_core(book, clinic, doctor.id, patient.id, start)
        except (SlotTakenError, SlotUnavailableError):
            logger.info("slot lost before booking chat=%s", chat_ref(tracker))
            return [*clear(tracker, "slot_choice", "offered_slots"), SlotSet("slot_taken", True)]
        except NotConsentedError:
            dispatcher.utter_message(text=templates().render("need_consent"))
            return finished
        except AppointmentNotFoundError:
            dispatcher.utter_message(text=templates().render("appointment_gone"))
            return finished
        except (DatabaseUnavailableError, UnknownDoctorError):
            say_unavailable(dispatcher, tracker, "book")
            return finished
        deliverable = reminder_deliverable(
            appointment.start_at, clinic.now(), clinic.settings.reminder_lead
        )
        zone = ZoneInfo(doctor.timezone)
        dispatcher.utter_message(
            text=templates().confirmation(appointment.start_at, zone, deliverable, bool(moving))
        )
        return finished
