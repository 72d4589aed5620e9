"""Builders for test data, through the same tables the product uses."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from clinic.context import Clinic
from clinic.db import transaction
from clinic.models import Appointment, BlockedTime, Doctor, Patient, WorkingHours
from clinic.patients import record_consent, save_details
from tests.conftest import TEST_NAME, TEST_PHONE

WEEKDAYS_9_TO_5_WITH_LUNCH = {day: [(time(9), time(12)), (time(13), time(17))] for day in range(5)}


def add_doctor(
    clinic: Clinic,
    hours: dict[int, list[tuple[time, time]]] | None = None,
    zone: str = "America/New_York",
    slot_minutes: int = 30,
    name: str = "Dr. Test",
    visit_types: str | None = None,
) -> int:
    hours = WEEKDAYS_9_TO_5_WITH_LUNCH if hours is None else hours
    with transaction(clinic.engine) as session:
        doctor = Doctor(
            name=name,
            timezone=zone,
            slot_minutes=slot_minutes,
            active=1,
            visit_types=visit_types,
        )
        session.add(doctor)
        session.flush()
        for weekday, ranges in hours.items():
            for opens, closes in ranges:
                session.add(
                    WorkingHours(
                        doctor_id=doctor.id, weekday=weekday, start_time=opens, end_time=closes
                    )
                )
        return doctor.id


def add_block(clinic: Clinic, start: datetime, end: datetime, doctor_id: int | None) -> None:
    with transaction(clinic.engine) as session:
        session.add(BlockedTime(doctor_id=doctor_id, start_at=start, end_at=end, reason="test"))


def add_patient(clinic: Clinic, instagram_id: str = "IG_TEST_1", details: bool = True) -> Patient:
    patient = record_consent(clinic, instagram_id)
    if details:
        patient = save_details(clinic, patient.id, TEST_NAME, TEST_PHONE)
    return patient


def add_appointment(
    clinic: Clinic, doctor_id: int, patient_id: int | None, start: datetime, minutes: int = 30
) -> None:
    """A booked row as it stands in the table (no free-slot check): for feeds and lists."""
    with transaction(clinic.engine) as session:
        session.add(
            Appointment(
                doctor_id=doctor_id,
                patient_id=patient_id,
                start_at=start,
                end_at=start + timedelta(minutes=minutes),
            )
        )
