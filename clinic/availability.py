"""Free slots of a doctor, read from the database and cut by `clinic.slots`."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from clinic.context import Clinic
from clinic.db import transaction
from clinic.errors import UnknownDoctorError
from clinic.faq import OpeningHours, merge_ranges
from clinic.models import (
    BOOKED,
    Appointment,
    BlockedTime,
    Doctor,
    ScheduleOverride,
    WorkingHours,
)
from clinic.slots import Interval, day_bounds, free_slots

# Appointments never last longer than this; it bounds the index range scanned.
MAX_APPOINTMENT_LENGTH = timedelta(hours=8)


def available_slots(clinic: Clinic, doctor_id: int, day: date) -> list[datetime]:
    """Bookable starts of `day` (in the doctor's time zone), earliest first."""
    with transaction(clinic.engine) as session:
        return slots_in_session(session, clinic, load_doctor(session, doctor_id), day)


def next_days_with_slots(clinic: Clinic, doctor_id: int, from_day: date, n: int) -> list[date]:
    """Up to `n` days from `from_day` on that have at least one free slot."""
    with transaction(clinic.engine) as session:
        days = days_with_slots(session, clinic, load_doctor(session, doctor_id), from_day)
        return [day for day, _ in itertools.islice(days, max(n, 0))]


def first_day_with_slots(
    clinic: Clinic, doctor_id: int, from_day: date
) -> tuple[date, list[datetime]] | None:
    """The first day from `from_day` on that has free slots, and those slots."""
    with transaction(clinic.engine) as session:
        days = days_with_slots(session, clinic, load_doctor(session, doctor_id), from_day)
        return next(days, None)


def days_with_slots(
    session: Session, clinic: Clinic, doctor: Doctor, from_day: date, minutes: int | None = None
) -> Iterator[tuple[date, list[datetime]]]:
    """Days with free slots (of `minutes`, by default the doctor's slot) up to the horizon,
    read with one query for all their bookings."""
    zone = ZoneInfo(doctor.timezone)
    last_day = clinic.last_bookable_day(zone)
    if from_day > last_day:
        return
    window = Interval(day_bounds(from_day, zone).start, day_bounds(last_day, zone).end)
    busy = busy_intervals(session, doctor.id, window)
    hours = doctor_hours(session, doctor.id, from_day, last_day)
    for offset in range((last_day - from_day).days + 1):
        day = from_day + timedelta(days=offset)
        bounds = day_bounds(day, zone)
        busy_today = [b for b in busy if b.overlaps(bounds)]
        slots = _free(clinic, doctor, day, hours, busy_today, minutes)
        if slots:
            yield day, slots


def slots_in_session(
    session: Session,
    clinic: Clinic,
    doctor: Doctor,
    day: date,
    minutes: int | None = None,
    ignore: int | None = None,
) -> list[datetime]:
    """`available_slots` inside a caller's transaction (booking checks with it); `ignore`:
    an appointment about to move, whose own time counts as free."""
    zone = ZoneInfo(doctor.timezone)
    busy = busy_intervals(session, doctor.id, day_bounds(day, zone), ignore)
    return _free(clinic, doctor, day, doctor_hours(session, doctor.id, day, day), busy, minutes)


def load_doctor(session: Session, doctor_id: int) -> Doctor:
    doctor = session.get(Doctor, doctor_id)
    if doctor is None or not doctor.active:
        raise UnknownDoctorError(f"no active doctor with id {doctor_id}")
    return doctor


@dataclass(frozen=True)
class Hours:
    """A doctor's working hours: by weekday (0 = Monday), and on dates that differ (an
    override: other ranges, or none for a day off)."""

    weekly: dict[int, list[tuple[time, time]]]
    overrides: dict[date, list[tuple[time, time]]]

    def on(self, day: date) -> list[tuple[time, time]]:
        if day in self.overrides:
            return self.overrides[day]
        return self.weekly.get(day.weekday(), [])


def doctor_hours(session: Session, doctor_id: int, first: date, last: date) -> Hours:
    """The doctor's weekly hours and their date overrides from `first` to `last`."""
    rows = session.execute(
        select(WorkingHours.weekday, WorkingHours.start_time, WorkingHours.end_time).where(
            WorkingHours.doctor_id == doctor_id
        )
    )
    weekly: dict[int, list[tuple]] = defaultdict(list)
    for weekday, opens, closes in rows:
        weekly[weekday].append((opens, closes))
    overrides: dict[date, list[tuple]] = defaultdict(list)
    for day, opens, closes in session.execute(
        select(ScheduleOverride.day, ScheduleOverride.start_time, ScheduleOverride.end_time).where(
            ScheduleOverride.doctor_id == doctor_id,
            ScheduleOverride.day >= first,
            ScheduleOverride.day <= last,
        )
    ):
        overrides.setdefault(day, [])  # a day off: a row without times
        if opens is not None:
            overrides[day].append((opens, closes))
    return Hours(dict(weekly), dict(overrides))


def busy_intervals(
    session: Session, doctor_id: int, window: Interval, ignore: int | None = None
) -> list[Interval]:
    """Active appointments (but `ignore`) and blocks (the doctor's and clinic-wide) inside
    `window`."""
    appointments = session.execute(
        select(Appointment.start_at, Appointment.end_at).where(
            Appointment.doctor_id == doctor_id,
            Appointment.status == BOOKED,
            Appointment.start_at >= window.start - MAX_APPOINTMENT_LENGTH,
            Appointment.start_at < window.end,
            Appointment.id != (ignore or 0),
        )
    )
    blocks = session.execute(
        select(BlockedTime.start_at, BlockedTime.end_at).where(
            or_(BlockedTime.doctor_id == doctor_id, BlockedTime.doctor_id.is_(None)),
            BlockedTime.end_at > window.start,
            BlockedTime.start_at < window.end,
        )
    )
    intervals = [Interval(start, end) for start, end in [*appointments, *blocks]]
    return [i for i in intervals if i.overlaps(window)]


def _free(
    clinic: Clinic, doctor: Doctor, day: date, hours: Hours, busy: list, minutes: int | None
) -> list[datetime]:
    return free_slots(
        day=day,
        zone=ZoneInfo(doctor.timezone),
        hours=hours.on(day),
        slot_length=timedelta(minutes=minutes or doctor.slot_minutes),
        busy=busy,
        now=clinic.now(),
        rules=clinic.rules,
        step=timedelta(minutes=doctor.slot_minutes),
    )


def opening_hours(session: Session, clinic: Clinic, days_ahead: int = 60) -> OpeningHours:
    """The clinic's week (every active doctor's hours together), the coming days it is
    closed (a clinic-wide block covers its hours whole, or every doctor has the day off),
    and the coming days whose hours differ from their weekday's (date overrides)."""
    zone = clinic.settings.zone
    today = clinic.today()
    last = today + timedelta(days_ahead)
    doctors = [
        doctor_hours(session, doctor_id, today, last)
        for doctor_id in session.scalars(select(Doctor.id).where(Doctor.active == 1))
    ]
    weekly = {
        weekday: merge_ranges([r for hours in doctors for r in hours.weekly.get(weekday, [])])
        for weekday in range(7)
    }
    weekly = {weekday: ranges for weekday, ranges in weekly.items() if ranges}
    window = Interval(day_bounds(today, zone).start, day_bounds(last, zone).end)
    blocks = session.execute(
        select(BlockedTime.start_at, BlockedTime.end_at, BlockedTime.reason).where(
            BlockedTime.doctor_id.is_(None),
            BlockedTime.end_at > window.start,
            BlockedTime.start_at < window.end,
        )
    ).all()
    overridden = {day for hours in doctors for day in hours.overrides}
    closed, special = {}, {}
    for offset in range(days_ahead + 1):
        day = today + timedelta(days=offset)
        ranges = weekly.get(day.weekday(), [])
        if day in overridden:
            ranges = merge_ranges([r for hours in doctors for r in hours.on(day)])
            if ranges and ranges != weekly.get(day.weekday(), []):
                special[day] = ranges
            elif not ranges and weekly.get(day.weekday()):
                closed[day] = ""
        opening = [
            Interval(datetime.combine(day, o, tzinfo=zone), datetime.combine(day, c, tzinfo=zone))
            for o, c in ranges
        ]
        covering = [
            reason
            for start, end, reason in blocks
            if opening and all(Interval(start, end).covers(part) for part in opening)
        ]
        if covering:
            closed[day] = covering[0]
    return OpeningHours(weekly, closed, special)
