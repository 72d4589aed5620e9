"""Showing, cancelling and rescheduling one's own appointments (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from actions.manage import (
    ActionAskAppointmentChoice,
    ActionAskCancelConfirmed,
    ActionCancelAppointment,
    ActionShowAppointments,
    ActionStartCancel,
    ActionStartReschedule,
    ValidateCancelForm,
    ValidateRescheduleForm,
)
from clinic.booking import book, upcoming
from tests.factories import add_doctor, add_patient
from tests.trackers import make_tracker, run, texts

NEW_YORK = ZoneInfo("America/New_York")
THURSDAY = date(2026, 2, 5)
FRIDAY = date(2026, 2, 6)


def at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=NEW_YORK)


@pytest.fixture
def two_appointments(any_clinic):
    doctor = add_doctor(any_clinic)
    patient = add_patient(any_clinic)
    first = book(any_clinic, doctor, patient.id, at(THURSDAY, 9))
    second = book(any_clinic, doctor, patient.id, at(FRIDAY, 14))
    return patient, first, second


def options_of(*appointments) -> list[dict]:
    """As the manage actions keep them; one doctor and one visit: nothing to name."""
    return [
        {
            "id": a.id,
            "start": a.start_at.isoformat(),
            "doctor": a.doctor_id,
            "visit": a.visit_type,
            "named": "",
        }
        for a in appointments
    ]


def test_show_lists_only_my_upcoming_appointments(app, two_appointments, any_clinic):
    other = add_patient(any_clinic, "IG_OTHER")
    _, messages = run(ActionShowAppointments(app), make_tracker())
    assert texts(messages) == [
        "Your upcoming appointments:\n- Feb 5, 2026 at 9:00 AM\n- Feb 6, 2026 at 2:00 PM"
    ]
    _, messages = run(ActionShowAppointments(app), make_tracker(sender_id="IG_OTHER"))
    assert texts(messages) == ['You don\'t have any upcoming appointments. Say "book" to make one.']
    assert other


def test_starting_to_cancel_a_single_appointment_chooses_it(app, any_clinic):
    doctor, patient = add_doctor(any_clinic), add_patient(any_clinic)
    only = book(any_clinic, doctor, patient.id, at(THURSDAY, 9))
    slots, _ = run(ActionStartCancel(app), make_tracker())
    assert slots["appointment_options"] == options_of(only)
    assert slots["appointment_choice"] == str(only.id)
    slots, _ = run(ActionStartReschedule(app), make_tracker())
    assert slots["rescheduling_id"] == str(only.id)


def test_a_day_named_when_asking_to_cancel_picks_that_appointment(app, two_appointments):
    _, first, second = two_appointments
    slots, _ = run(ActionStartCancel(app), make_tracker(text="cancel the one on friday"))
    assert slots["appointment_choice"] == str(second.id)
    slots, _ = run(ActionStartReschedule(app), make_tracker(text="move my thursday appointment"))
    assert slots["appointment_choice"] == slots["rescheduling_id"] == str(first.id)
    slots, _ = run(ActionStartCancel(app), make_tracker(text="cancel my appointment"))
    assert "appointment_choice" not in slots


def test_with_several_the_patient_picks_by_number_or_day(app, two_appointments):
    _, first, second = two_appointments
    options = options_of(first, second)
    _, (question,) = run(
        ActionAskAppointmentChoice(app), make_tracker(slots={"appointment_options": options})
    )
    assert question["text"] == (
        "Which appointment do you mean?\n1. Feb 5, 2026 at 9:00 AM\n2. Feb 6, 2026 at 2:00 PM"
    )
    assert [b["title"] for b in question["buttons"]] == ["Feb 5, 9:00 AM", "Feb 6, 2:00 PM"]
    for text, chosen in [("2", second), ("the one on friday", second), ("first", first)]:
        tracker = make_tracker(
            text=text,
            intent="choose_option",
            active_loop="cancel_form",
            slots={"requested_slot": "appointment_choice", "appointment_options": options},
        )
        slots, _ = run(ValidateCancelForm(app), tracker)
        assert slots["appointment_choice"] == str(chosen.id)


def test_an_unreadable_choice_is_asked_again_with_the_range(app, two_appointments):
    _, first, second = two_appointments
    tracker = make_tracker(
        text="the blue one",
        active_loop="cancel_form",
        slots={
            "requested_slot": "appointment_choice",
            "appointment_options": options_of(first, second),
        },
    )
    slots, messages = run(ValidateCancelForm(app), tracker)
    assert slots["appointment_choice"] is None
    assert texts(messages) == ["Please reply with a number from 1 to 2."]


def test_cancelling_asks_first_and_then_frees_the_slot(app, two_appointments, any_clinic):
    patient, first, second = two_appointments
    slots = {"appointment_options": options_of(first, second), "appointment_choice": str(first.id)}
    _, (question,) = run(ActionAskCancelConfirmed(app), make_tracker(slots=slots))
    assert question["text"] == "Do you want to cancel your appointment on Feb 5, 2026 at 9:00 AM?"
    _, messages = run(
        ActionCancelAppointment(app), make_tracker(slots={**slots, "cancel_confirmed": True})
    )
    assert texts(messages) == ["Done: your appointment on Feb 5, 2026 at 9:00 AM is cancelled."]
    assert [a.id for a in upcoming(any_clinic, patient.id)] == [second.id]


def test_saying_no_keeps_the_appointment(app, two_appointments, any_clinic):
    patient, first, second = two_appointments
    slots = {"appointment_options": options_of(first), "appointment_choice": str(first.id)}
    _, messages = run(
        ActionCancelAppointment(app), make_tracker(slots={**slots, "cancel_confirmed": False})
    )
    assert texts(messages) == ["OK, I've kept your appointment on Feb 5, 2026 at 9:00 AM."]
    assert len(upcoming(any_clinic, patient.id)) == 2


def test_someone_elses_appointment_cannot_be_cancelled(app, two_appointments, any_clinic):
    patient, first, _ = two_appointments
    add_patient(any_clinic, "IG_INTRUDER")
    slots = {
        "appointment_options": options_of(first),
        "appointment_choice": str(first.id),
        "cancel_confirmed": True,
    }
    _, messages = run(
        ActionCancelAppointment(app), make_tracker(sender_id="IG_INTRUDER", slots=slots)
    )
    assert texts(messages) == ["That appointment was already cancelled."]
    assert len(upcoming(any_clinic, patient.id)) == 2


def test_nothing_to_cancel_says_so(app, any_clinic):
    add_doctor(any_clinic)
    add_patient(any_clinic)
    slots, _ = run(ActionStartCancel(app), make_tracker())
    assert slots["appointment_options"] == []
    tracker = make_tracker(slots={"appointment_options": []}, active_loop="cancel_form")
    form_slots, _ = run(ValidateCancelForm(app), tracker)
    assert form_slots == {"requested_slot": None}
    _, messages = run(ActionCancelAppointment(app), make_tracker(slots={"appointment_options": []}))
    assert texts(messages) == ['You don\'t have any upcoming appointments. Say "book" to make one.']


def test_the_reschedule_form_remembers_which_appointment_moves(app, two_appointments):
    _, first, second = two_appointments
    tracker = make_tracker(
        text="2",
        active_loop="reschedule_form",
        slots={
            "requested_slot": "appointment_choice",
            "appointment_options": options_of(first, second),
        },
    )
    slots, _ = run(ValidateRescheduleForm(app), tracker)
    assert slots["appointment_choice"] == slots["rescheduling_id"] == str(second.id)
