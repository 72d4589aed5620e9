"""Booking on SQLite and on the real PostgreSQL server: the same suite for both."""

from __future__ import annotations

import threading
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import NullPool

from clinic import booking
from clinic.booking import book, cancel, reschedule, upcoming
from clinic.context import Clinic
from clinic.db import create_database_engine, transaction
from clinic.errors import (
    AppointmentNotFoundError,
    InvalidNameError,
    InvalidPhoneError,
    NotConsentedError,
    SlotTakenError,
    SlotUnavailableError,
    UnknownDoctorError,
)
from clinic.models import Appointment, AuditEvent, Patient
from clinic.patients import record_consent, save_details
from tests.conftest import TEST_NAME, TEST_PHONE
from tests.factories import add_doctor, add_patient

NEW_YORK = ZoneInfo("America/New_York")
TUESDAY = date(2026, 2, 3)


def at(hour: int, minute: int = 0, day: date = TUESDAY) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=NEW_YORK)


def count(clinic: Clinic, model, *where) -> int:
    with transaction(clinic.engine) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def snapshot(clinic: Clinic) -> dict[str, int]:
    return {
        model.__tablename__: count(clinic, model) for model in (Appointment, AuditEvent, Patient)
    }


def test_booking_stores_utc_times_of_one_slot_and_an_audit_row(any_clinic):
    doctor, patient = add_doctor(any_clinic), add_patient(any_clinic)
    appointment = book(any_clinic, doctor, patient.id, at(14))
    assert appointment.start_at == datetime(2026, 2, 3, 19, 0, tzinfo=timezone.utc)
    assert appointment.end_at - appointment.start_at == timedelta(minutes=30)
    assert appointment.status == "booked"
    with transaction(any_clinic.engine) as session:
        (event,) = session.scalars(
            select(AuditEvent).where(AuditEvent.name == "appointment_booked")
        ).all()
    assert (event.appointment_id, event.patient_id, event.doctor_id) == (
        appointment.id,
        patient.id,
        doctor,
    )


def test_the_same_slot_twice_is_refused_and_one_row_remains(any_clinic):
    doctor = add_doctor(any_clinic)
    first, second = add_patient(any_clinic, "IG_A"), add_patient(any_clinic, "IG_B")
    book(any_clinic, doctor, first.id, at(9))
    before = snapshot(any_clinic)
    with pytest.raises(SlotTakenError):
        book(any_clinic, doctor, second.id, at(9))
    assert snapshot(any_clinic) == before


def test_booking_the_slot_one_already_holds_confirms_it_again(any_clinic):
    """A turn run again after a crash books again: the same appointment, no 'slot taken'."""
    doctor, patient = add_doctor(any_clinic), add_patient(any_clinic)
    first = book(any_clinic, doctor, patient.id, at(9))
    before = snapshot(any_clinic)
    again = book(any_clinic, doctor, patient.id, at(9))
    assert again.id == first.id
    assert snapshot(any_clinic) == before


def test_moving_again_to_where_one_was_moved_confirms_it_again(any_clinic):
    doctor, patient = add_doctor(any_clinic), add_patient(any_clinic)
    original = book(any_clinic, doctor, patient.id, at(9))
    moved = reschedule(any_clinic, original.id, patient.id, at(11))
    before = snapshot(any_clinic)
    again = reschedule(any_clinic, original.id, patient.id, at(11))
    assert again.id == moved.id
    assert snapshot(any_clinic) == before
    assert [a.start_at for a in upcoming(any_clinic, patient.id)] == [at(11)]


def test_a_cancelled_slot_can_be_booked_again(any_clinic):
    doctor = add_doctor(any_clinic)
    first, second = add_patient(any_clinic, "IG_A"), add_patient(any_clinic, "IG_B")
    appointment = book(any_clinic, doctor, first.id, at(9))
    cancel(any_clinic, appointment.id, first.id)
    again = book(any_clinic, doctor, second.id, at(9))
    assert again.id != appointment.id
    assert count(any_clinic, Appointment, Appointment.status == "booked") == 1


def test_a_patient_cannot_see_or_cancel_someone_elses_appointment(any_clinic):
    doctor = add_doctor(any_clinic)
    owner, other = add_patient(any_clinic, "IG_A"), add_patient(any_clinic, "IG_B")
    appointment = book(any_clinic, doctor, owner.id, at(9))
    assert upcoming(any_clinic, other.id) == []
    with pytest.raises(AppointmentNotFoundError):
        cancel(any_clinic, appointment.id, other.id)
    assert [a.id for a in upcoming(any_clinic, owner.id)] == [appointment.id]
    cancelled = cancel(any_clinic, appointment.id, owner.id)
    assert cancelled.status == "cancelled"
    assert upcoming(any_clinic, owner.id) == []
    with pytest.raises(AppointmentNotFoundError):
        cancel(any_clinic, appointment.id, owner.id)


def test_upcoming_is_ordered_and_leaves_out_the_past(any_clinic, clock):
    doctor, patient = add_doctor(any_clinic), add_patient(any_clinic)
    later = book(any_clinic, doctor, patient.id, at(15, day=TUESDAY + timedelta(days=1)))
    sooner = book(any_clinic, doctor, patient.id, at(11))
    assert [a.id for a in upcoming(any_clinic, patient.id)] == [sooner.id, later.id]
    clock.advance(timedelta(days=1, hours=12))
    assert [a.id for a in upcoming(any_clinic, patient.id)] == [later.id]


def test_reschedule_moves_in_one_step_and_keeps_the_old_slot_on_conflict(any_clinic):
    doctor = add_doctor(any_clinic)
    patient, other = add_patient(any_clinic, "IG_A"), add_patient(any_clinic, "IG_B")
    original = book(any_clinic, doctor, patient.id, at(9))
    book(any_clinic, doctor, other.id, at(10))
    with pytest.raises(SlotTakenError):
        reschedule(any_clinic, original.id, patient.id, at(10))
    assert [a.id for a in upcoming(any_clinic, patient.id)] == [original.id]
    moved = reschedule(any_clinic, original.id, patient.id, at(11))
    assert [a.start_at for a in upcoming(any_clinic, patient.id)] == [moved.start_at]
    assert moved.start_at == at(11)


@pytest.mark.parametrize(
    ("start", "error"),
    [
        (at(9, 10), SlotUnavailableError),  # off the grid
        (at(12), SlotUnavailableError),  # lunch
        (at(18), SlotUnavailableError),  # after hours
        (datetime(2026, 2, 2, 9, 0, tzinfo=NEW_YORK), SlotUnavailableError),  # in the past
        (datetime(2026, 2, 2, 9, 30), SlotUnavailableError),  # no time zone
        (at(9, day=TUESDAY + timedelta(days=90)), SlotUnavailableError),  # beyond the horizon
    ],
    ids=["off-grid", "lunch", "after-hours", "past", "naive", "beyond-horizon"],
)
def test_a_start_that_is_not_a_free_slot_changes_nothing(any_clinic, start, error):
    doctor, patient = add_doctor(any_clinic), add_patient(any_clinic)
    before = snapshot(any_clinic)
    with pytest.raises(error):
        book(any_clinic, doctor, patient.id, start)
    assert snapshot(any_clinic) == before


def test_unknown_doctor_and_unconsented_patient_change_nothing(any_clinic):
    doctor = add_doctor(any_clinic)
    patient = add_patient(any_clinic)
    before = snapshot(any_clinic)
    with pytest.raises(UnknownDoctorError):
        book(any_clinic, 4242, patient.id, at(9))
    with pytest.raises(NotConsentedError):
        book(any_clinic, doctor, 4242, at(9))
    assert snapshot(any_clinic) == before


@pytest.mark.parametrize(
    ("name", "phone", "error"),
    [
        (TEST_NAME, "call me maybe", InvalidPhoneError),
        (TEST_NAME, "12345", InvalidPhoneError),
        ("x" * 10_000, TEST_PHONE, InvalidNameError),
        ("Robert'); DROP TABLE patients;--", TEST_PHONE, InvalidNameError),
        ("   ", TEST_PHONE, InvalidNameError),
        ("12345", TEST_PHONE, InvalidNameError),
    ],
    ids=["words", "too-short", "10k-name", "sql-name", "blank-name", "digits-name"],
)
def test_bad_details_are_refused_and_nothing_is_stored(any_clinic, name, phone, error):
    patient = record_consent(any_clinic, "IG_DETAILS")
    with pytest.raises(error):
        save_details(any_clinic, patient.id, name, phone)
    with transaction(any_clinic.engine) as session:
        stored = session.get(Patient, patient.id)
        assert (stored.name, stored.phone) == (None, None)
        assert session.scalar(text("SELECT count(*) FROM patients")) == 1


@pytest.mark.parametrize("threads", [50])
def test_fifty_concurrent_bookings_of_one_slot_make_exactly_one(database_url, clock, threads):
    """Every thread has its own engine without a pool: separate connections, real races."""
    setup = _clinic(database_url, clock)
    doctor = add_doctor(setup)
    patients = [add_patient(setup, f"IG_RACE_{i}").id for i in range(threads)]
    clinics = [_clinic(database_url, clock) for _ in range(threads)]
    barrier = threading.Barrier(threads)
    outcomes: list[str] = []

    def attempt(clinic: Clinic, patient_id: int) -> None:
        barrier.wait()
        try:
            book(clinic, doctor, patient_id, at(14))
            outcomes.append("booked")
        except SlotTakenError:
            outcomes.append("taken")

    workers = [
        threading.Thread(target=attempt, args=(c, p))
        for c, p in zip(clinics, patients, strict=True)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert sorted(outcomes) == ["booked"] + ["taken"] * (threads - 1)
    assert count(setup, Appointment, Appointment.status == "booked") == 1
    assert count(setup, AuditEvent, AuditEvent.name == "appointment_booked") == 1
    for clinic in [setup, *clinics]:
        clinic.engine.dispose()


def _clinic(url: str, clock) -> Clinic:
    from clinic.settings import Settings

    return Clinic(
        create_database_engine(url, poolclass=NullPool), Settings(database_url=url), clock
    )


def test_postgres_refuses_an_overlapping_booking_of_another_length(postgres_url, clock):
    clinic = _clinic(postgres_url, clock)
    doctor, patient = add_doctor(clinic), add_patient(clinic)
    book(clinic, doctor, patient.id, at(9, 30))
    with pytest.raises(IntegrityError) as refused, transaction(clinic.engine) as session:
        session.add(
            Appointment(
                doctor_id=doctor,
                patient_id=patient.id,
                start_at=at(9),
                end_at=at(10),
                status="booked",
                notes="",
                created_at=clock(),
            )
        )
    assert refused.value.orig.pgcode == "23P01"  # exclusion_violation
    clinic.engine.dispose()


def test_the_database_guard_alone_turns_a_stale_check_into_slot_taken(any_clinic, monkeypatch):
    """With the friendly check blinded, the unique index still refuses the second booking."""
    doctor = add_doctor(any_clinic)
    first, second = add_patient(any_clinic, "IG_A"), add_patient(any_clinic, "IG_B")
    book(any_clinic, doctor, first.id, at(9))
    monkeypatch.setattr(booking, "slots_in_session", lambda *args: [at(9)])
    before = snapshot(any_clinic)
    with pytest.raises(SlotTakenError) as taken:
        book(any_clinic, doctor, second.id, at(9))
    assert isinstance(taken.value.__cause__, IntegrityError)
    assert snapshot(any_clinic) == before
