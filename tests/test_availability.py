"""Free slots read from the database: hours, blocks, bookings, clinic-wide closures."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from clinic.availability import available_slots, next_days_with_slots
from clinic.booking import book, cancel
from clinic.errors import UnknownDoctorError
from tests.factories import add_block, add_doctor, add_patient

NEW_YORK = ZoneInfo("America/New_York")
TUESDAY = date(2026, 2, 3)  # the clock fixture stands on Monday Feb 2, 8:00 EST


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=NEW_YORK)


def times(slots: list[datetime]) -> list[str]:
    return [f"{s:%H:%M}" for s in slots]


def test_demo_schedule_has_fourteen_slots_and_no_lunch(any_clinic):
    doctor = add_doctor(any_clinic)
    slots = available_slots(any_clinic, doctor, TUESDAY)
    assert len(slots) == 14
    assert "12:00" not in times(slots) and "12:30" not in times(slots)
    assert slots[0].isoformat() == "2026-02-03T09:00:00-05:00"


def test_bookings_and_blocks_are_removed_and_cancelling_frees_again(any_clinic):
    doctor = add_doctor(any_clinic)
    patient = add_patient(any_clinic)
    appointment = book(any_clinic, doctor, patient.id, at(TUESDAY, 10))
    add_block(any_clinic, at(TUESDAY, 14), at(TUESDAY, 15), doctor)
    free = times(available_slots(any_clinic, doctor, TUESDAY))
    assert "10:00" not in free and "14:00" not in free and "14:30" not in free
    assert len(free) == 11
    cancel(any_clinic, appointment.id, patient.id)
    assert "10:00" in times(available_slots(any_clinic, doctor, TUESDAY))


def test_a_clinic_wide_holiday_closes_every_doctor(any_clinic):
    first, second = add_doctor(any_clinic), add_doctor(any_clinic, name="Dr. Two")
    add_block(any_clinic, at(TUESDAY, 0), at(TUESDAY + timedelta(days=2), 0), doctor_id=None)
    for doctor in (first, second):
        assert available_slots(any_clinic, doctor, TUESDAY) == []
        assert available_slots(any_clinic, doctor, TUESDAY + timedelta(days=1)) == []
        assert available_slots(any_clinic, doctor, TUESDAY + timedelta(days=2))


def test_another_doctors_block_does_not_matter(any_clinic):
    first, second = add_doctor(any_clinic), add_doctor(any_clinic, name="Dr. Two")
    add_block(any_clinic, at(TUESDAY, 9), at(TUESDAY, 17), doctor_id=second)
    assert len(available_slots(any_clinic, first, TUESDAY)) == 14
    assert available_slots(any_clinic, second, TUESDAY) == []


def test_today_respects_the_minimum_notice(any_clinic):
    doctor = add_doctor(any_clinic)
    # 8:00 now + 2 h notice: the first slot is 10:00.
    assert times(available_slots(any_clinic, doctor, date(2026, 2, 2)))[0] == "10:00"


def test_next_days_skip_weekends_full_days_and_stop_at_the_horizon(any_clinic):
    doctor = add_doctor(any_clinic)
    add_block(any_clinic, at(TUESDAY, 0), at(TUESDAY, 23), doctor)
    days = next_days_with_slots(any_clinic, doctor, date(2026, 2, 2), 4)
    assert days == [date(2026, 2, 2), date(2026, 2, 4), date(2026, 2, 5), date(2026, 2, 6)]
    horizon_end = date(2026, 2, 2) + timedelta(days=60)  # Friday Apr 3
    late = next_days_with_slots(any_clinic, doctor, horizon_end - timedelta(days=3), 10)
    assert late == [date(2026, 3, 31), date(2026, 4, 1), date(2026, 4, 2), date(2026, 4, 3)]


def test_unknown_doctor_is_a_clear_error(any_clinic):
    with pytest.raises(UnknownDoctorError):
        available_slots(any_clinic, 999, TUESDAY)
    with pytest.raises(UnknownDoctorError):
        next_days_with_slots(any_clinic, 999, TUESDAY, 3)
