"""Booking: start the flow, ask for the visit, the doctor, a day and a time, read the
answers, book.

What the patient asked for travels in slots: `visit_type` (a profile key), `doctor_choice`
(a doctor's id, or "any"), `time_of_day` (a `TimeOfDay` code), `appointment_day`, and the
times offered (`offered_slots`, `Offer` codes). The visit type and the doctor are asked only
when there is a choice; a first message such as "asap with dr smith, afternoon" fills what
it names.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from dataclasses import replace
from datetime import date, time, timedelta
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction
from rasa_sdk.types import DomainDict

from actions.answers import typed_answer
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
from actions.parsing import (
    doctor_named,
    find_clock_time,
    parse_slot_choice,
    parse_time_of_day,
    wants_any_doctor,
    wants_soonest,
)
from clinic.application import DoctorView, Offer, Wish
from clinic.errors import (
    AppointmentNotFoundError,
    DatabaseUnavailableError,
    NotConsentedError,
    SlotTakenError,
    SlotUnavailableError,
    UnknownDoctorError,
)
from clinic.faq import visit_type_named
from clinic.preferences import TimeOfDay
from clinic.templates import format_clock, format_day, format_time

logger = logging.getLogger(__name__)

DAYS_OFFERED = 5
ANY_DOCTOR = "any"
BOOKING_SLOTS = [
    "visit_type",
    "doctor_choice",
    "time_of_day",
    "appointment_day",
    "preferred_time",
    "slot_choice",
    "offered_slots",
    "slot_taken",
    "rescheduling_id",
]
MANAGE_SLOTS = ["appointment_options", "appointment_choice", "cancel_confirmed"]
TIMES_OF_DAY = {
    "morning": "morning", "afternoon": "afternoon", "evening": "evening",
    "earliest": "earliest", "latest": "latest",
}  # fmt: skip


class BookingWishes(UsesClinic):
    """Reads what a patient asks for from their words and from the conversation's slots."""

    def wish(self, tracker: Tracker) -> Wish:
        """The visit, doctor and time of day asked for; for a move, the moved appointment's."""
        moving = _moved_option(tracker)
        if moving is not None:
            return Wish(moving.get("visit"), moving.get("doctor"), _time_of_day(tracker))
        choice = tracker.get_slot("doctor_choice")
        doctor = int(choice) if isinstance(choice, str) and choice.isdigit() else None
        return Wish(tracker.get_slot("visit_type"), doctor, _time_of_day(tracker))

    async def wishes_named(self, text: str, doctors: list[DoctorView]) -> dict[str, Any]:
        """Slots for what a message names besides the day: a visit, a doctor, a time of day."""
        found: dict[str, Any] = {}
        visit = visit_type_named(text, self.app.profile)
        if visit is not None:
            found["visit_type"] = visit.key
        doctor = doctor_named(text, [(d.id, d.name) for d in doctors])
        if doctor is not None:
            found["doctor_choice"] = str(doctor)
        elif wants_any_doctor(text):
            found["doctor_choice"] = ANY_DOCTOR
        time_of_day = parse_time_of_day(text)
        if time_of_day is not None:
            found["time_of_day"] = time_of_day
        return found

    def describe(self, wish: Wish) -> str:
        """'morning', 'after 3:00 PM': how a time-of-day wish is said back."""
        code = wish.time_of_day.code if wish.time_of_day else ""
        if code in TIMES_OF_DAY:
            return TIMES_OF_DAY[code]
        word, _, clock = code.partition(" ")
        return f"{word} {format_clock(time.fromisoformat(clock))}" if clock else code


def _time_of_day(tracker: Tracker) -> TimeOfDay | None:
    return TimeOfDay.parse(tracker.get_slot("time_of_day"))


def _moved_option(tracker: Tracker) -> dict[str, Any] | None:
    moving = tracker.get_slot("rescheduling_id")
    options = tracker.get_slot("appointment_options") or []
    return next((o for o in options if str(o.get("id")) == str(moving)), None) if moving else None


class ActionStartBooking(BookingWishes, ClinicAction):
    """Starts over cleanly; keeps the day, time, visit and doctor a first message names;
    knows returning patients; takes a yes after a refused consent as consent."""

    def name(self) -> str:
        return "action_start_booking"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        events = clear(tracker, *BOOKING_SLOTS, "patient_name", "patient_phone", "consent_given")
        text = latest_text(tracker)
        named = named_values(tracker)
        intent = latest_intent(tracker)
        if intent in {"book_appointment", "give_date_time"}:
            events += await self._named_in(text, named)
        try:
            if intent == "affirm" and _refused_consent_just_now(tracker):
                await self.core(self.app.grant_consent, tracker.sender_id)  # changed their mind
            patient = await self.core(self.app.patient, tracker.sender_id)
        except DatabaseUnavailableError:
            patient = None
        if patient is not None and patient.on_file:
            events.append(SlotSet("consent_given", True))
        return events

    async def _named_in(self, text: str, named: dict[str, str]) -> list[dict[str, Any]]:
        events = []
        if wants_soonest(text):  # "asap": the earliest free times, from today
            events.append(SlotSet("appointment_day", self.app.today().isoformat()))
        day = self.read_day(named.get("appointment_day") or text)
        if day is not None:
            events.append(SlotSet("appointment_day", day.isoformat()))
            # "tomorrow at 3pm": that time is booked straight away if it is free.
            wanted = named.get("preferred_time") or find_clock_time(text)
            events.append(SlotSet("preferred_time", wanted))
        try:
            doctors = await self.core(self.app.doctors)
        except DatabaseUnavailableError:
            doctors = []
        for slot, value in (await self.wishes_named(text, doctors)).items():
            events.append(SlotSet(slot, value))
        return events


def _refused_consent_just_now(tracker: Tracker) -> bool:
    """The bot's last words before this message were the consent refusal."""
    for event in reversed(tracker.events[:-1]):
        if event.get("event") == "action" and event.get("name") not in {"action_listen", None}:
            return event.get("name") == "utter_consent_declined"
    return False


# The visit types and doctors as read for the message being handled: rasa-sdk asks the
# form's required slots three times per message, and the database once.
_choices_this_message: ContextVar[tuple | None] = ContextVar("choices", default=None)


class DayAndSlotValidation(BookingWishes):
    """Reads the day and slot answers; shared by the booking and reschedule forms."""

    extract_appointment_day = typed_answer("appointment_day")

    extract_slot_choice = typed_answer("slot_choice")

    @skips_cleared
    async def validate_appointment_day(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = str(value)
        time_of_day = parse_time_of_day(text)
        day = self.app.today() if wants_soonest(text) else self._checked_day(text, dispatcher)
        if day is None:
            return {"appointment_day": None, "preferred_time": None}
        answer = {
            "appointment_day": day.isoformat(),
            "slot_choice": None,
            "offered_slots": None,
            "preferred_time": None,
        }
        if time_of_day is not None:
            answer["time_of_day"] = time_of_day
        wanted = find_clock_time(text) or tracker.get_slot("preferred_time")
        if wanted:
            wish = replace(self.wish(tracker), time_of_day=None)
            answer["slot_choice"] = await self._free_slot_at(day, wanted, wish, dispatcher)
        return answer

    @skips_cleared
    async def validate_slot_choice(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = str(value)
        time_of_day = parse_time_of_day(text)
        offers = [o for o in map(Offer.from_code, tracker.get_slot("offered_slots") or []) if o]
        # "after 3" names a time but asks for a range: the list again, narrowed.
        wish = TimeOfDay.parse(time_of_day)
        ranged = wish is not None and wish.bounded_by_a_clock_time
        chosen = None if ranged else _chosen_offer(text, offers, self.app.zone)
        if chosen is not None:
            return {"slot_choice": chosen.code}
        current_day = tracker.get_slot("appointment_day")
        other_day = self.read_day(text)
        if other_day is not None and other_day.isoformat() != current_day:
            # The patient changed their mind about the day (and maybe the time of day).
            day = self._checked_day(text, dispatcher)
            if day is not None:
                answer = {"appointment_day": day.isoformat(), "slot_choice": None}
                answer["offered_slots"] = None
                if time_of_day is not None:
                    answer["time_of_day"] = time_of_day
                return answer
            return {"slot_choice": None}
        if time_of_day is not None:  # "anything in the afternoon?": the list again, narrowed
            return {"time_of_day": time_of_day, "slot_choice": None, "offered_slots": None}
        if offers:
            example = format_time(offers[min(1, len(offers) - 1)].start, self.app.zone)
            dispatcher.utter_message(
                text=self.texts.render("slot_reprompt", count=str(len(offers)), example=example)
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
        self, day: date, wanted: str, wish: Wish, dispatcher: CollectingDispatcher
    ) -> str | None:
        """The free time of `day` the patient named; says so when it is not free."""
        try:
            offers = await self.core(self.app.slots_on, day, wish)
        except (DatabaseUnavailableError, UnknownDoctorError):
            return None  # the slot list will say that the system can't be reached
        chosen = _chosen_offer(wanted, offers, self.app.zone)
        if chosen is None:
            dispatcher.utter_message(
                text=self.texts.render(
                    "time_not_free", time=wanted.removeprefix("at ").strip(), day=format_day(day)
                )
            )
            return None
        return chosen.code


def _chosen_offer(text: str, offers: list[Offer], zone: Any) -> Offer | None:
    """The offer an answer picks: its quick reply's payload, a number, a time, an ordinal."""
    by_code = {offer.code: offer for offer in offers}
    if text.strip() in by_code:
        return by_code[text.strip()]
    start = parse_slot_choice(text, [offer.start for offer in offers], zone)
    return next((offer for offer in offers if offer.start == start), None)


class ValidateBookingForm(DayAndSlotValidation, FormValidationAction):
    """Asks for the visit type only when there are several, and for the doctor only when
    several offer it and the patient named none."""

    def name(self) -> str:
        return "validate_booking_form"

    async def run(self, dispatcher, tracker, domain):  # noqa: ANN001 - rasa-sdk's signature
        token = _choices_this_message.set(None)
        try:
            return await super().run(dispatcher, tracker, domain)
        finally:
            _choices_this_message.reset(token)

    async def _choices(self) -> tuple[list, list[DoctorView]]:
        choices = _choices_this_message.get()
        if choices is None:
            try:
                doctors = await self.core(self.app.doctors)
            except DatabaseUnavailableError:
                doctors = []
            choices = (self.app.visits_offered_by(doctors), doctors)
            _choices_this_message.set(choices)
        return choices

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        visits, doctors = await self._choices()
        required = list(domain_slots)
        if len(visits) < 2:
            required.remove("visit_type")
        visit = tracker.get_slot("visit_type") or (visits[0].key if visits else None)
        offering = [d for d in doctors if visit in d.visit_types]
        if len(offering) < 2:
            required.remove("doctor_choice")
        return required

    extract_visit_type = typed_answer("visit_type")

    extract_doctor_choice = typed_answer("doctor_choice")

    @skips_cleared
    async def validate_visit_type(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        visits, _ = await self._choices()
        keys = {v.key for v in visits}
        named = visit_type_named(str(value), self.app.profile)
        key = str(value) if str(value) in keys else named.key if named else None
        if key not in keys:
            names = ", ".join(v.name for v in visits)
            dispatcher.utter_message(text=self.texts.render("choose_visit", visits=names))
            return {"visit_type": None}
        return {"visit_type": key}

    @skips_cleared
    async def validate_doctor_choice(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        _, doctors = await self._choices()
        text = str(value)
        if text == ANY_DOCTOR or wants_any_doctor(text):
            return {"doctor_choice": ANY_DOCTOR}
        ids = {str(d.id) for d in doctors}
        chosen = text if text in ids else doctor_named(text, [(d.id, d.name) for d in doctors])
        if chosen is None:
            names = ", ".join(d.name for d in doctors)
            dispatcher.utter_message(text=self.texts.render("choose_doctor", doctors=names))
            return {"doctor_choice": None}
        return {"doctor_choice": str(chosen)}


class ActionAskVisitType(ClinicAction):
    def name(self) -> str:
        return "action_ask_visit_type"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        visits = await self.core(self.app.visit_types)
        profile = self.app.profile
        options = [(f"{v.name} {profile.price_of(v)}", v.key) for v in visits]
        dispatcher.utter_message(
            text=self.texts.render("ask_visit_type"), buttons=quick_replies(options)
        )
        return []


class ActionAskDoctorChoice(ClinicAction):
    def name(self) -> str:
        return "action_ask_doctor_choice"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        visit = tracker.get_slot("visit_type") or self.app.profile.visit_type(None).key
        doctors = [d for d in await self.core(self.app.doctors) if visit in d.visit_types]
        options = [(d.name, str(d.id)) for d in doctors]
        options.append((self.texts.render("any_doctor_button"), ANY_DOCTOR))
        dispatcher.utter_message(
            text=self.texts.render("ask_doctor"), buttons=quick_replies(options)
        )
        return []


class ActionAskAppointmentDay(BookingWishes, ClinicAction):
    def name(self) -> str:
        return "action_ask_appointment_day"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        today = self.app.today()
        try:
            days = await self.core(
                self.app.days_with_slots, today, DAYS_OFFERED, self.wish(tracker)
            )
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


class ActionAskSlotChoice(BookingWishes, ClinicAction):
    """Lists the day's free times that fit the wish. A day with free times but none that
    fit says so and offers the nearest days that fit; a full day moves on to the next day
    that has some."""

    def name(self) -> str:
        return "action_ask_slot_choice"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        day = date.fromisoformat(tracker.get_slot("appointment_day"))
        just_taken = bool(tracker.get_slot("slot_taken"))
        wish = asked = self.wish(tracker)
        fits_nowhere = False
        try:
            if wish.time_of_day is not None and await self._none_fit_on(day, wish):
                nearest = await self._nearest_fitting(day, wish)
                if nearest:
                    return self._offer_days(dispatcher, day, wish, nearest)
                # No day soon has such times: show the day's times, saying so.
                fits_nowhere, wish = True, replace(wish, time_of_day=None)
            found = await self.core(self.app.first_day_with_slots, day, wish)
        except (DatabaseUnavailableError, UnknownDoctorError):
            self.say_unavailable(dispatcher, tracker, "ask slot")
            return [SlotSet("offered_slots", [])]
        if found is None:
            say_no_free_days(self, dispatcher, day)
            return [SlotSet("offered_slots", []), SlotSet("slot_taken", False)]
        header = self._slot_list_header(day, found.day, just_taken)
        if fits_nowhere:
            header = self.texts.render(
                "none_fit_anywhere", wish=self.describe(asked), day=format_day(day)
            )
        text, buttons = self.numbered_offers(header, found.offers, await self._names(found.offers))
        dispatcher.utter_message(text=text, buttons=buttons)
        return [
            SlotSet("appointment_day", found.day.isoformat()),
            SlotSet("offered_slots", [offer.code for offer in found.offers]),
            SlotSet("slot_taken", False),
        ]

    async def _none_fit_on(self, day: date, wish: Wish) -> bool:
        """The day has free times, but none that fits the wish."""
        if await self.core(self.app.slots_on, day, wish):
            return False
        return bool(await self.core(self.app.slots_on, day, replace(wish, time_of_day=None)))

    async def _nearest_fitting(self, day: date, wish: Wish) -> list[date]:
        """Up to three days near the given one with times that fit the wish."""
        earliest = max(self.app.today(), day - timedelta(days=3))
        days = await self.core(self.app.days_with_slots, earliest, DAYS_OFFERED + 3, wish)
        return sorted(days, key=lambda d: (abs((d - day).days), d))[:3]

    def _offer_days(
        self, dispatcher: CollectingDispatcher, day: date, wish: Wish, nearest: list[date]
    ) -> list[dict[str, Any]]:
        """The day has free times, none of them fits: the nearest days that have some."""
        text = self.texts.render("none_fit", wish=self.describe(wish), day=format_day(day))
        buttons = quick_replies([(format_day(d), d.isoformat()) for d in sorted(nearest)])
        dispatcher.utter_message(text=text, buttons=buttons)
        return [SlotSet("offered_slots", []), SlotSet("slot_taken", False)]

    async def _names(self, offers: list[Offer]) -> dict[int, str] | None:
        """Doctors' names, when the times are several doctors'."""
        if len({offer.doctor_id for offer in offers}) < 2:
            return None
        return {d.id: d.name for d in await self.core(self.app.doctors)}

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
    """Books (or moves) the chosen time; a time lost to someone else is offered again."""

    def name(self) -> str:
        return "action_book_appointment"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        offer = Offer.from_code(tracker.get_slot("slot_choice"))
        moving = tracker.get_slot("rescheduling_id")
        finished = clear(tracker, *BOOKING_SLOTS, *MANAGE_SLOTS)
        if offer is None:
            if tracker.get_slot("appointment_options") == []:  # asked to move, has none
                dispatcher.utter_message(text=self.texts.render("no_appointments"))
            return finished
        message_at = message_time(tracker) or self.app.now()
        visit = tracker.get_slot("visit_type")
        try:
            booked = await self.core(
                self.app.book_for,
                tracker.sender_id,
                offer,
                message_at,
                visit,
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
        text = self.texts.confirmation(
            booked.appointment.start_at,
            booked.zone,
            booked.reminder,
            booked.moved,
            visit=booked.visit if booked.choice else "",
            doctor=booked.doctor if booked.choice else "",
        )
        dispatcher.utter_message(text=text)
        return finished
