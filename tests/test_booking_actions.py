"""Booking actions with real trackers; the ones that write run on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from actions.booking import (
    ActionAskAppointmentDay,
    ActionAskSlotChoice,
    ActionBookAppointment,
    ActionStartBooking,
    ValidateBookingForm,
)
from clinic.application import ClinicApp
from clinic.availability import available_slots
from clinic.booking import book, upcoming
from clinic.db import transaction
from clinic.models import Appointment
from tests.conftest import build_clinic, unreachable_app
from tests.factories import add_block, add_doctor, add_patient
from tests.helpers import StatementLog
from tests.trackers import make_tracker, run, texts

NEW_YORK = ZoneInfo("America/New_York")
# The clock fixture: Monday Feb 2, 2026, 8:00 in New York.
TUESDAY = date(2026, 2, 3)
THURSDAY = date(2026, 2, 5)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=NEW_YORK)


def code(start: datetime | str, doctor: int = 1) -> str:
    """How a conversation keeps an offered time (`Offer.code`): the start, and the doctor."""
    start = start.isoformat() if isinstance(start, datetime) else start
    return f"{start}@{doctor}"


def slot_answer(text: str, offered: list[datetime], day: date = THURSDAY, intent="choose_option"):
    return make_tracker(
        text=text,
        intent=intent,
        active_loop="booking_form",
        slots={
            "requested_slot": "slot_choice",
            "appointment_day": day.isoformat(),
            "offered_slots": [code(s) for s in offered],
        },
    )


def active_rows(clinic) -> int:
    with transaction(clinic.engine) as session:
        return session.scalar(
            select(func.count()).select_from(Appointment).where(Appointment.status == "booked")
        )


# --- starting -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("book me for next tuesday", "2026-02-03"),
        ("I need an appointment tomorrow", "2026-02-03"),
        ("can I see the doctor friday?", "2026-02-06"),
        ("book an appointment", None),
    ],
)
def test_the_day_in_the_first_message_is_kept(app, clinic, text, day):
    slots, messages = run(
        ActionStartBooking(app), make_tracker(text=text, intent="book_appointment")
    )
    assert slots.get("appointment_day") == day
    assert messages == []


@pytest.mark.parametrize(
    ("entities", "day", "time"),
    [
        ([{"entity": "appointment_day", "value": "2026-02-05"}], "2026-02-05", None),
        ([{"entity": "appointment_day", "value": 5}], None, None),
        ([{"entity": "appointment_day", "value": {"a": 1}}], None, None),
        ([{"entity": "preferred_time", "value": 5}], None, None),
        ([{"entity": "patient_name", "value": "x"}, {"value": "y"}, "z"], None, None),
    ],
    ids=["string-day", "number-day", "object-day", "number-time", "unknown-entities"],
)
def test_typed_payloads_are_used_only_for_known_entities_holding_text(
    app, clinic, entities, day, time
):
    """`/book_appointment{"appointment_day": 5}` typed by a patient gets the normal answer."""
    tracker = make_tracker(text="/book_appointment", intent="book_appointment", entities=entities)
    slots, messages = run(ActionStartBooking(app), tracker)
    assert (slots.get("appointment_day"), slots.get("preferred_time")) == (day, time)
    assert messages == []


def test_a_time_in_the_first_message_is_kept_for_the_day(app, clinic):
    slots, _ = run(
        ActionStartBooking(app),
        make_tracker(text="book me thursday at 2pm", intent="book_appointment"),
    )
    assert (slots["appointment_day"], slots["preferred_time"]) == ("2026-02-05", "at 2pm")


@pytest.mark.parametrize(
    ("value", "preferred", "chosen", "said"),
    [
        ("2026-02-05", "at 2pm", code("2026-02-05T14:00:00-05:00"), []),
        ("thursday at 2:30", None, code("2026-02-05T14:30:00-05:00"), []),
        ("2026-02-05", "at 12:15", None, ["Sorry, 12:15 isn't free on Thu, Feb 5."]),
        ("thursday", None, None, []),
    ],
)
def test_a_named_free_time_is_chosen_at_once(app, clinic, value, preferred, chosen, said):
    add_doctor(clinic)
    tracker = make_tracker(
        text=value,
        active_loop="booking_form",
        slots={
            "requested_slot": "appointment_day",
            "appointment_day": value,
            "preferred_time": preferred,
        },
    )
    tracker.events.append({"event": "slot", "name": "appointment_day", "value": value})
    slots, messages = run(ValidateBookingForm(app), tracker)
    assert slots["appointment_day"] == "2026-02-05"
    assert slots.get("slot_choice") == chosen
    assert texts(messages) == said


def test_a_returning_patient_is_recognised_by_the_instagram_id(app, clinic):
    add_patient(clinic, "IG_BACK")
    slots, _ = run(
        ActionStartBooking(app), make_tracker(sender_id="IG_BACK", intent="book_appointment")
    )
    assert slots["consent_given"] is True
    new_slots, _ = run(
        ActionStartBooking(app), make_tracker(sender_id="IG_NEW", intent="book_appointment")
    )
    assert "consent_given" not in new_slots


def test_starting_over_clears_what_a_previous_flow_left(app, clinic):
    tracker = make_tracker(
        text="book",
        intent="book_appointment",
        slots={
            "slot_choice": "2026-02-05T09:00:00-05:00",
            "offered_slots": ["x"],
            "slot_taken": True,
        },
    )
    slots, _ = run(ActionStartBooking(app), tracker)
    assert slots == {"slot_choice": None, "offered_slots": None, "slot_taken": None}


# --- asking ---------------------------------------------------------------------


def test_the_day_question_offers_the_next_days_with_free_slots(app, clinic):
    doctor = add_doctor(clinic)
    add_block(clinic, at(TUESDAY, 0), at(TUESDAY, 23), doctor)
    _, (message,) = run(ActionAskAppointmentDay(app), make_tracker())
    assert message["text"].startswith("Which day works for you?")
    assert [(b["title"], b["payload"]) for b in message["buttons"]] == [
        ("Mon, Feb 2", "2026-02-02"),
        ("Wed, Feb 4", "2026-02-04"),
        ("Thu, Feb 5", "2026-02-05"),
        ("Fri, Feb 6", "2026-02-06"),
        ("Mon, Feb 9", "2026-02-09"),
    ]


def test_the_slot_list_is_numbered_with_one_quick_reply_per_slot_at_most_13(app, clinic):
    add_doctor(clinic)
    tracker = make_tracker(slots={"appointment_day": THURSDAY.isoformat()})
    slots, (message,) = run(ActionAskSlotChoice(app), tracker)
    lines = message["text"].split("\n")
    assert lines[0] == "Here are the available times for Thu, Feb 5:"
    assert lines[1:4] == ["1. 9:00 AM", "2. 9:30 AM", "3. 10:00 AM"]
    assert lines[14] == "14. 4:30 PM"
    assert len(message["buttons"]) == 13
    assert message["buttons"][0] == {
        "title": "9:00 AM",
        "payload": code("2026-02-05T09:00:00-05:00"),
    }
    assert all(len(b["title"]) <= 20 for b in message["buttons"])
    assert len(slots["offered_slots"]) == 14


def test_a_day_without_free_slots_offers_the_next_day_that_has_some(app, clinic):
    add_doctor(clinic)
    saturday = date(2026, 2, 7)
    slots, (message,) = run(
        ActionAskSlotChoice(app), make_tracker(slots={"appointment_day": saturday.isoformat()})
    )
    assert message["text"].startswith(
        "Sorry, there are no free times on Sat, Feb 7. The next day with free times is Mon, Feb 9:"
    )
    assert slots["appointment_day"] == "2026-02-09"


def test_after_a_lost_slot_the_list_says_so(app, clinic):
    add_doctor(clinic)
    tracker = make_tracker(slots={"appointment_day": THURSDAY.isoformat(), "slot_taken": True})
    slots, (message,) = run(ActionAskSlotChoice(app), tracker)
    assert message["text"].startswith(
        "That slot was just taken. Here are available slots for Thu, Feb 5:"
    )
    assert slots["slot_taken"] is False


# --- reading answers ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "index"),
    [
        ("2", 1),
        ("2:30", 9),
        ("2:30pm", 9),
        ("14:30", 9),
        ("the second one", 1),
        (code("2026-02-05T09:30:00-05:00"), 1),
        ("last", 13),
    ],
)
def test_slot_answers(app, clinic, text, index):
    doctor = add_doctor(clinic)
    offered = available_slots(clinic, doctor, THURSDAY)
    slots, messages = run(ValidateBookingForm(app), slot_answer(text, offered))
    assert slots["slot_choice"] == code(offered[index])
    assert messages == []


def test_a_slot_answer_that_matches_nothing_names_the_valid_range(app, clinic):
    doctor = add_doctor(clinic)
    offered = available_slots(clinic, doctor, THURSDAY)
    slots, messages = run(ValidateBookingForm(app), slot_answer("the purple one", offered))
    assert slots["slot_choice"] is None
    assert "a number from 1 to 14 or a time like 9:30 AM" in texts(messages)[0]


def test_naming_another_day_while_choosing_a_time_switches_the_day(app, clinic):
    doctor = add_doctor(clinic)
    offered = available_slots(clinic, doctor, THURSDAY)
    slots, messages = run(ValidateBookingForm(app), slot_answer("actually make it friday", offered))
    assert slots["appointment_day"] == "2026-02-06"
    assert slots["slot_choice"] is None and slots["offered_slots"] is None
    assert messages == []


@pytest.mark.parametrize(
    ("text", "expected", "message"),
    [
        ("friday", "2026-02-06", None),
        ("whenever", None, "Sorry, I couldn't tell which day you mean."),
        ("yesterday", None, "Sun, Feb 1 has already passed."),
        ("2026-01-30", None, "Fri, Jan 30 has already passed."),
        ("jan 30", None, "I can only book up to Fri, Apr 3."),
        ("2026-06-30", None, "I can only book up to Fri, Apr 3."),
    ],
)
def test_day_answers(app, clinic, text, expected, message):
    tracker = make_tracker(
        text=text,
        intent="give_date_time",
        active_loop="booking_form",
        slots={"requested_slot": "appointment_day"},
    )
    slots, messages = run(ValidateBookingForm(app), tracker)
    assert slots["appointment_day"] == expected
    if message:
        assert texts(messages)[0].startswith(message)
    else:
        assert messages == []


# --- booking (SQLite and PostgreSQL) ----------------------------------------------------


def booking_tracker(start: datetime, sender_id: str = "IG_TEST_1", **slots):
    return make_tracker(
        sender_id=sender_id,
        slots={
            "slot_choice": code(start),
            "appointment_day": start.date().isoformat(),
            **slots,
        },
    )


def test_booking_sends_the_promised_confirmation(app, any_clinic):
    add_doctor(any_clinic)
    patient = add_patient(any_clinic)
    # Tomorrow 2 PM: its reminder falls due inside the 24-hour window.
    slots, messages = run(ActionBookAppointment(app), booking_tracker(at(TUESDAY, 14)))
    assert texts(messages) == [
        "Your appointment is confirmed for Feb 3, 2026 at 2:00 PM. We'll send you a reminder here."
    ]
    assert [a.start_at for a in upcoming(any_clinic, patient.id)] == [at(TUESDAY, 14)]
    assert slots["slot_choice"] is None and slots["appointment_day"] is None


def test_a_far_appointment_is_confirmed_without_promising_a_reminder(app, any_clinic):
    add_doctor(any_clinic)
    add_patient(any_clinic)
    _, messages = run(ActionBookAppointment(app), booking_tracker(at(THURSDAY, 9)))
    assert texts(messages)[0].startswith(
        "Your appointment is confirmed for Feb 5, 2026 at 9:00 AM."
    )
    assert "Please save this message" in texts(messages)[0]


TWILIO = dict(twilio_account_sid="AC1", twilio_auth_token="t", twilio_from="+12025550100")


def test_with_texts_a_far_appointment_promises_a_text_reminder(database_url, clock):
    texting = ClinicApp(build_clinic(database_url, clock, **TWILIO))
    add_doctor(texting.clinic)
    add_patient(texting.clinic)
    _, messages = run(ActionBookAppointment(texting), booking_tracker(at(THURSDAY, 9)))
    assert texts(messages) == [
        "Your appointment is confirmed for Feb 5, 2026 at 9:00 AM. "
        "We'll text you a reminder the day before."
    ]
    texting.choose_texts("IG_TEST_1", False)  # "no texts": the save-this text again
    _, messages = run(ActionBookAppointment(texting), booking_tracker(at(THURSDAY, 11)))
    assert "Please save this message" in texts(messages)[0]
    texting.clinic.engine.dispose()


def test_a_slot_taken_meanwhile_is_offered_again_and_nothing_is_written(app, any_clinic):
    doctor = add_doctor(any_clinic)
    add_patient(any_clinic)
    other = add_patient(any_clinic, "IG_OTHER")
    book(any_clinic, doctor, other.id, at(THURSDAY, 9))
    slots, messages = run(ActionBookAppointment(app), booking_tracker(at(THURSDAY, 9)))
    assert messages == []
    assert slots == {"slot_choice": None, "slot_taken": True}
    assert active_rows(any_clinic) == 1


def test_rescheduling_moves_the_appointment(app, any_clinic):
    doctor = add_doctor(any_clinic)
    patient = add_patient(any_clinic)
    old = book(any_clinic, doctor, patient.id, at(THURSDAY, 9))
    tracker = booking_tracker(at(THURSDAY, 15), rescheduling_id=str(old.id))
    _, messages = run(ActionBookAppointment(app), tracker)
    assert texts(messages)[0].startswith(
        "Done: your appointment is moved to Feb 5, 2026 at 3:00 PM."
    )
    assert [a.start_at for a in upcoming(any_clinic, patient.id)] == [at(THURSDAY, 15)]


def test_a_patient_without_consent_is_not_booked(app, any_clinic):
    add_doctor(any_clinic)
    _, messages = run(ActionBookAppointment(app), booking_tracker(at(THURSDAY, 9), "IG_STRANGER"))
    assert texts(messages) == ['I need your consent before I can book. Say "book" to start again.']
    assert active_rows(any_clinic) == 0


def test_a_database_outage_books_nothing_and_says_try_again(clinic):
    add_doctor(clinic)
    add_patient(clinic)
    outage = unreachable_app(clinic.clock)
    slots, messages = run(ActionBookAppointment(outage), booking_tracker(at(THURSDAY, 9)))
    assert texts(messages) == [
        "Sorry, I can't reach the booking system right now. Please try again in a few minutes."
    ]
    assert active_rows(clinic) == 0
    assert slots["slot_choice"] is None


def test_the_whole_week_is_bookable_in_order(app, any_clinic):
    """Every listed slot of a day can be booked one after the other."""
    doctor = add_doctor(any_clinic)
    patient = add_patient(any_clinic)
    for start in available_slots(any_clinic, doctor, THURSDAY):
        _, messages = run(ActionBookAppointment(app), booking_tracker(start))
        assert texts(messages)[0].startswith("Your appointment is confirmed")
    assert available_slots(any_clinic, doctor, THURSDAY) == []
    assert len(upcoming(any_clinic, patient.id)) == 14


@pytest.mark.parametrize("moving", [False, True], ids=["book", "reschedule"])
def test_a_booking_is_one_transaction(app, any_clinic, moving):
    doctor = add_doctor(any_clinic)
    patient = add_patient(any_clinic)
    extra = {}
    if moving:
        extra["rescheduling_id"] = str(book(any_clinic, doctor, patient.id, at(THURSDAY, 9)).id)
    assert app.templates  # the clinic's texts, read at most once a second, are at hand
    with StatementLog(any_clinic.engine) as log:
        _, messages = run(ActionBookAppointment(app), booking_tracker(at(THURSDAY, 15), **extra))
    assert texts(messages)[0].startswith(("Your appointment is confirmed", "Done: your"))
    assert log.transactions == 1
