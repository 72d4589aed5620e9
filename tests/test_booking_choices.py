"""What patients ask for when they book: a time of day, "asap", a doctor, a visit type; a
move to a named day; a yes after refusing consent. Real trackers, real databases."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.booking import (
    ActionAskAppointmentDay,
    ActionAskDoctorChoice,
    ActionAskSlotChoice,
    ActionAskVisitType,
    ActionBookAppointment,
    ActionStartBooking,
    ValidateBookingForm,
)
from actions.manage import ActionShowAppointments, ActionStartReschedule
from clinic.booking import book, upcoming
from clinic.patients import find_patient
from tests.factories import add_doctor, add_patient
from tests.trackers import DOMAIN, make_tracker, run, texts

# The clock fixture: Monday Feb 2, 2026, 8:00 in New York.
TUESDAY, THURSDAY, FRIDAY = date(2026, 2, 3), date(2026, 2, 5), date(2026, 2, 6)
TWO_TO_SIX = {d: [(time(14), time(18))] for d in range(7)}


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo("America/New_York"))


def start(app, text: str, intent: str = "book_appointment", **kwargs) -> dict:
    slots, _ = run(ActionStartBooking(app), make_tracker(text=text, intent=intent, **kwargs))
    return slots


def times_listed(app, **slots) -> tuple[dict, dict]:
    slots_set, (message,) = run(ActionAskSlotChoice(app), make_tracker(slots=slots))
    return slots_set, message


# --- times of day --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "day", "time_of_day"),
    [
        ("next tuesday afternoon", "2026-02-03", "afternoon"),
        ("wednesday, in the morning please", "2026-02-04", "morning"),
        ("can i come friday after 3", "2026-02-06", "after 15:00"),
        ("tomorrow before noon", "2026-02-03", "before 12:00"),
        ("i need an appointment asap", "2026-02-02", "earliest"),
        ("first available please", "2026-02-02", "earliest"),
        ("anything after 4 on tuesday?", "2026-02-03", "after 16:00"),
        ("is there anything after 4pm on monday", "2026-02-02", "after 16:00"),
        ("monday before 10:30am?", "2026-02-02", "before 10:30"),
    ],
)
def test_the_first_message_keeps_its_day_and_time_of_day(app, clinic, text, day, time_of_day):
    add_doctor(clinic)
    slots = start(app, text)
    assert (slots.get("appointment_day"), slots.get("time_of_day")) == (day, time_of_day)
    # A time that bounds the wish is not a time to book straight away.
    assert slots.get("preferred_time") is None


@pytest.mark.parametrize(
    ("time_of_day", "first", "last", "count"),
    [
        ("morning", "9:00 AM", "11:30 AM", 6),
        ("afternoon", "1:00 PM", "4:30 PM", 8),
        ("after 15:00", "3:00 PM", "4:30 PM", 4),
        ("before 10:00", "9:00 AM", "9:30 AM", 2),
        ("earliest", "9:00 AM", "10:00 AM", 3),
        ("latest", "3:30 PM", "4:30 PM", 3),
    ],
)
def test_a_time_of_day_narrows_the_times_offered(app, clinic, time_of_day, first, last, count):
    add_doctor(clinic)
    slots, message = times_listed(
        app, appointment_day=THURSDAY.isoformat(), time_of_day=time_of_day
    )
    lines = message["text"].split("\n")
    assert lines[1] == f"1. {first}" and lines[count] == f"{count}. {last}"
    assert len(slots["offered_slots"]) == count


def test_when_no_time_fits_the_wish_the_nearest_days_that_fit_are_offered(app, clinic):
    add_doctor(clinic, hours={d: [(time(9), time(12))] for d in range(7)})
    add_doctor(clinic, hours={FRIDAY.weekday(): [(time(17), time(19))]}, name="Dr. Late")
    slots, message = times_listed(app, appointment_day=THURSDAY.isoformat(), time_of_day="evening")
    assert (
        message["text"]
        == "Sorry, there are no evening times free on Thu, Feb 5. These days have some:"
    )
    assert [b["payload"] for b in message["buttons"]][0] == FRIDAY.isoformat()
    assert slots["offered_slots"] == []


def test_when_no_day_soon_fits_the_wish_the_days_times_are_offered_saying_so(app, clinic):
    add_doctor(clinic)  # 9:00 to 17:00 every weekday: never an evening
    slots, message = times_listed(app, appointment_day=THURSDAY.isoformat(), time_of_day="evening")
    lines = message["text"].split("\n")
    assert lines[0] == (
        "Sorry, we have no evening times in the coming days. "
        "Here are all the free times for Thu, Feb 5:"
    )
    assert lines[1] == "1. 9:00 AM" and len(slots["offered_slots"]) == 14


def test_asap_offers_the_earliest_free_times(app, clinic):
    add_doctor(clinic)
    slots = start(app, "i need an appointment asap")
    _, message = times_listed(app, **slots)
    # 8:00 on Monday: two hours' notice leaves 10:00 as the first time.
    assert message["text"].split("\n")[:4] == [
        "Here are the available times for Mon, Feb 2:",
        "1. 10:00 AM",
        "2. 10:30 AM",
        "3. 11:00 AM",
    ]


@pytest.mark.parametrize(
    ("text", "time_of_day"),
    [
        ("anything in the afternoon?", "afternoon"),
        ("after 3", "after 15:00"),  # 3:00 PM is on the list: still a range, not a pick
        ("before 10 pls", "before 10:00"),
    ],
)
def test_a_time_of_day_said_while_choosing_narrows_the_list(app, clinic, text, time_of_day):
    add_doctor(clinic)
    listed, _ = times_listed(app, appointment_day=THURSDAY.isoformat())
    tracker = make_tracker(
        text=text,
        active_loop="booking_form",
        slots={"requested_slot": "slot_choice", "appointment_day": THURSDAY.isoformat(),
               "offered_slots": listed["offered_slots"]},
    )  # fmt: skip
    slots, _ = run(ValidateBookingForm(app), tracker)
    assert slots["time_of_day"] == time_of_day and slots["slot_choice"] is None


def test_a_time_on_the_list_is_still_picked_by_its_clock_time(app, clinic):
    add_doctor(clinic)
    listed, _ = times_listed(app, appointment_day=THURSDAY.isoformat())
    tracker = make_tracker(
        text="3pm please",
        active_loop="booking_form",
        slots={"requested_slot": "slot_choice", "appointment_day": THURSDAY.isoformat(),
               "offered_slots": listed["offered_slots"]},
    )  # fmt: skip
    slots, _ = run(ValidateBookingForm(app), tracker)
    assert slots["slot_choice"] == listed["offered_slots"][10]  # 9:00 … 11:30, 1:00 … 3:00


# --- doctors and visit types ------------------------------------------------------------


@pytest.fixture
def two_doctors(clinic) -> tuple[int, int]:
    demo = add_doctor(clinic, name="Dr. Demo", visit_types="consultation")
    smith = add_doctor(
        clinic, name="Dr. Smith", hours=TWO_TO_SIX, visit_types="consultation,procedure"
    )
    return demo, smith


def required(app, **slots) -> list[str]:
    """The slots the booking form will ask for."""
    tracker = make_tracker(text="x", active_loop="booking_form", slots=slots)
    asked = DOMAIN["forms"]["booking_form"]["required_slots"]
    return asyncio.run(
        ValidateBookingForm(app).required_slots(asked, CollectingDispatcher(), tracker, DOMAIN)
    )


def test_with_one_doctor_and_one_visit_type_neither_is_asked(app, clinic):
    add_doctor(clinic)
    assert required(app) == ["appointment_day", "slot_choice"]


def test_several_visit_types_and_doctors_are_asked_unless_named(app, two_doctors):
    assert required(app) == ["visit_type", "doctor_choice", "appointment_day", "slot_choice"]
    # Only Dr. Smith does procedures: no doctor to choose.
    assert required(app, visit_type="procedure") == ["visit_type", "appointment_day", "slot_choice"]


def test_the_visit_and_doctor_questions_offer_the_choices(app, two_doctors):
    _, (visits,) = run(ActionAskVisitType(app), make_tracker())
    assert visits["text"] == "What kind of visit do you need?"
    assert [b["payload"] for b in visits["buttons"]] == ["consultation", "procedure"]
    _, (doctors,) = run(
        ActionAskDoctorChoice(app), make_tracker(slots={"visit_type": "consultation"})
    )
    assert [b["title"] for b in doctors["buttons"]] == ["Dr. Demo", "Dr. Smith", "Any doctor"]


@pytest.mark.parametrize(
    ("text", "doctor"),
    [("i'd like to see Dr. Smith next week", "smith"), ("with smiht on friday", "smith"),
     ("book me with dr demo", "demo"), ("any doctor is fine, tomorrow", "any")],
)  # fmt: skip
def test_a_doctor_named_in_the_first_message_is_matched(app, two_doctors, text, doctor):
    demo, smith = two_doctors
    expected = {"smith": str(smith), "demo": str(demo), "any": "any"}[doctor]
    assert start(app, text)["doctor_choice"] == expected


def test_any_doctor_offers_the_earliest_times_across_doctors_with_their_names(app, two_doctors):
    _, message = times_listed(app, appointment_day=THURSDAY.isoformat(), doctor_choice="any")
    lines = message["text"].split("\n")
    assert lines[1] == "1. 9:00 AM Dr. Demo"
    assert "14. 4:30 PM Dr. Demo" in lines and "15. 5:00 PM Dr. Smith" in lines


def test_a_procedure_lasts_its_length_and_the_confirmation_names_visit_and_doctor(
    app, clinic, two_doctors
):
    _, smith = two_doctors
    patient = add_patient(clinic)
    slots, message = times_listed(
        app, appointment_day=THURSDAY.isoformat(), visit_type="procedure", doctor_choice=str(smith)
    )
    assert message["text"].split("\n")[1:4] == ["1. 2:00 PM", "2. 2:30 PM", "3. 3:00 PM"]
    assert len(slots["offered_slots"]) == 7  # 60 minutes from 2:00 to 5:00 on a 30-minute grid
    tracker = make_tracker(
        slots={"slot_choice": slots["offered_slots"][0], "visit_type": "procedure"}
    )
    _, messages = run(ActionBookAppointment(app), tracker)
    assert texts(messages)[0].startswith(
        "Your appointment is confirmed for Feb 5, 2026 at 2:00 PM: Procedure with Dr. Smith."
    )
    (booked,) = upcoming(clinic, patient.id)
    assert (booked.end_at - booked.start_at).total_seconds() == 3600
    assert booked.visit_type == "procedure"


def test_the_day_question_offers_days_the_chosen_doctor_works(app, two_doctors):
    _, smith = two_doctors
    _, (message,) = run(
        ActionAskAppointmentDay(app), make_tracker(slots={"doctor_choice": str(smith)})
    )
    assert message["buttons"][0]["payload"] == "2026-02-02"  # Dr. Smith works afternoons, daily


# --- moving to a named time, a change of mind ---------------------------------------


def test_moving_to_a_named_day_and_time_of_day_takes_them_at_once(app, clinic):
    doctor, patient = add_doctor(clinic), add_patient(clinic)
    only = book(clinic, doctor, patient.id, at(TUESDAY, 9))
    slots, _ = run(
        ActionStartReschedule(app),
        make_tracker(
            text="can i move it to friday morning instead", intent="reschedule_appointment"
        ),
    )
    assert slots["rescheduling_id"] == str(only.id)
    assert (slots["appointment_day"], slots["time_of_day"]) == ("2026-02-06", "morning")


def test_a_yes_right_after_refusing_consent_records_consent_and_books(app, clinic):
    events = [
        {"event": "action", "name": "utter_consent_declined"},
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": "ok fine yes"},
    ]
    run(ActionStartBooking(app), make_tracker(text="ok fine yes", intent="affirm", events=events))
    patient = find_patient(clinic, "IG_TEST_1")
    assert patient is not None and patient.has_consented


def test_with_several_doctors_the_list_of_appointments_names_visit_and_doctor(
    app, clinic, two_doctors
):
    demo, smith = two_doctors
    patient = add_patient(clinic)
    book(clinic, demo, patient.id, at(THURSDAY, 9))
    book(clinic, smith, patient.id, at(FRIDAY, 14))
    _, messages = run(ActionShowAppointments(app), make_tracker())
    assert texts(messages) == [
        "Your upcoming appointments:\n"
        "- Feb 5, 2026 at 9:00 AM: Consultation with Dr. Demo\n"
        "- Feb 6, 2026 at 2:00 PM: Consultation with Dr. Smith"
    ]
