"""The clinic's doctors as an admin sets them up: name, slot length, the visit types each
offers, working hours per weekday (several ranges a day: a lunch break), and date
overrides (a day off, or other hours on one date). A doctor with visits in the books is
deactivated, never deleted."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time

from sqlalchemy import delete, func, select

from clinic import audit
from clinic.context import Clinic
from clinic.db import transaction
from clinic.errors import ClinicError, UnknownDoctorError
from clinic.models import BOOKED, Appointment, Doctor, Patient, ScheduleOverride, WorkingHours
from clinic.profile import MAX_MINUTES, MIN_MINUTES

Ranges = list[tuple[time, time]]
_TIME = re.compile(r"^(\d{1,2})(?::(\d{2}))?\s*(am|pm|a\.m\.|p\.m\.)?$", re.IGNORECASE)
_RANGE_BREAK = re.compile(r"\s*(?:-|–|—|to)\s*", re.IGNORECASE)


class SetupError(ClinicError):
    """What an admin entered can't be used; the message says why, in their words."""


@dataclass(frozen=True)
class DoctorSetup:
    id: int | None
    name: str
    slot_minutes: int
    visit_keys: tuple[str, ...]
    weekly: dict[int, Ranges]  # weekday (0 = Monday) -> ranges
    active: bool = True


@dataclass(frozen=True)
class Override:
    id: int
    day: date
    ranges: Ranges  # none: a day off


@dataclass(frozen=True)
class StayingVisit:
    id: int
    start: datetime
    patient_name: str


def parse_time(text: str) -> time:
    """'9', '9:30', '09:30', '1pm', '1:30 PM', '13:00' -> a wall-clock time."""
    found = _TIME.match(text.strip())
    if not found:
        raise SetupError(f"{text.strip()!r} is not a time like 9:00 or 1:30 PM")
    hour, minute = int(found[1]), int(found[2] or 0)
    suffix = (found[3] or "").lower().replace(".", "")
    if suffix and not 1 <= hour <= 12:
        raise SetupError(f"{text.strip()!r} is not a time like 9:00 or 1:30 PM")
    if suffix == "pm" and hour != 12:
        hour += 12
    elif suffix == "am" and hour == 12:
        hour = 0
    if hour > 23 or minute > 59:
        raise SetupError(f"{text.strip()!r} is not a time of day")
    return time(hour, minute)


def parse_ranges(text: str) -> Ranges:
    """'9:00-12:00, 13:00-17:00' (or '9am-12pm, 1-5pm'; empty: not working) -> ordered
    ranges that don't overlap. Worked example: '13-17, 9-12' -> [(9:00, 12:00), (13:00,
    17:00)]; '9-13, 12-17' is refused: the two overlap."""
    ranges = []
    for part in filter(None, (p.strip() for p in re.split(r"[,;]|\band\b", text))):
        ends = _RANGE_BREAK.split(part)
        if len(ends) != 2:
            raise SetupError(f"{part!r} is not a range like 9:00-12:00")
        start_text, end_text = ends
        # "1-5pm": the end's am/pm holds for a start without one
        suffix = re.search(r"(am|pm)$", end_text.strip(), re.IGNORECASE)
        if suffix and not re.search(r"[ap]\.?m\.?$", start_text.strip(), re.IGNORECASE):
            start, end = parse_time(start_text), parse_time(end_text)
            with_suffix = parse_time(start_text + suffix[1])
            start = with_suffix if with_suffix < end else start
        else:
            start, end = parse_time(start_text), parse_time(end_text)
        if end <= start:
            raise SetupError(f"in {part!r} the end is not after the start")
        ranges.append((start, end))
    ranges.sort()
    for (_, end), (start, _) in zip(ranges, ranges[1:], strict=False):
        if start < end:
            raise SetupError(f"{_show(ranges)}: two ranges overlap")
    return ranges


def show_ranges(ranges: Ranges) -> str:
    """The form's way of writing ranges back: '9:00-12:00, 13:00-17:00'."""
    return _show(ranges)


def _show(ranges: Ranges) -> str:
    return ", ".join(f"{s:%H:%M}-{e:%H:%M}" for s, e in ranges)


def check_slot_minutes(minutes: int | None) -> int:
    if minutes is None or not MIN_MINUTES <= minutes <= MAX_MINUTES:
        raise SetupError(f"the slot length must be {MIN_MINUTES} to {MAX_MINUTES} minutes")
    return minutes


def doctor_setups(clinic: Clinic) -> list[DoctorSetup]:
    """Every doctor, active ones first."""
    with transaction(clinic.engine) as session:
        doctors = session.scalars(select(Doctor).order_by(Doctor.active.desc(), Doctor.id))
        return [_setup(session, d) for d in doctors]


def doctor_setup(clinic: Clinic, doctor_id: int) -> DoctorSetup:
    with transaction(clinic.engine) as session:
        doctor = session.get(Doctor, doctor_id)
        if doctor is None:
            raise UnknownDoctorError(f"no doctor with id {doctor_id}")
        return _setup(session, doctor)


def save_doctor(clinic: Clinic, staff_id: int | None, setup: DoctorSetup) -> int:
    """Adds the doctor (`setup.id` None) or replaces their name, slot, visits and weekly
    hours; their id."""
    name = " ".join(setup.name.split())
    if not name:
        raise SetupError("the doctor needs a name")
    check_slot_minutes(setup.slot_minutes)
    with transaction(clinic.engine) as session:
        if setup.id is None:
            doctor = Doctor(timezone=clinic.settings.timezone, active=1)
            session.add(doctor)
        else:
            doctor = session.get(Doctor, setup.id)
            if doctor is None:
                raise UnknownDoctorError(f"no doctor with id {setup.id}")
        doctor.name, doctor.slot_minutes = name[:200], setup.slot_minutes
        doctor.visit_types = ",".join(setup.visit_keys)
        session.flush()
        session.execute(delete(WorkingHours).where(WorkingHours.doctor_id == doctor.id))
        for weekday, ranges in sorted(setup.weekly.items()):
            for start, end in ranges:
                session.add(
                    WorkingHours(
                        doctor_id=doctor.id, weekday=weekday, start_time=start, end_time=end
                    )
                )
        audit.record(session, audit.SETUP_CHANGED, doctor_id=doctor.id, staff_id=staff_id)
        return doctor.id


def overrides_of(clinic: Clinic, doctor_id: int, from_day: date) -> list[Override]:
    """The doctor's date overrides from `from_day` on, by date."""
    with transaction(clinic.engine) as session:
        rows = session.scalars(
            select(ScheduleOverride)
            .where(ScheduleOverride.doctor_id == doctor_id, ScheduleOverride.day >= from_day)
            .order_by(ScheduleOverride.day, ScheduleOverride.start_time)
        ).all()
    by_day: dict[date, Override] = {}
    for row in rows:
        found = by_day.setdefault(row.day, Override(row.id, row.day, []))
        if row.start_time is not None:
            found.ranges.append((row.start_time, row.end_time))
    return list(by_day.values())


def set_override(
    clinic: Clinic, staff_id: int | None, doctor_id: int, day: date, ranges: Ranges
) -> None:
    """The doctor works `ranges` on `day` instead of the weekday's hours (none: a day off)."""
    with transaction(clinic.engine) as session:
        if session.get(Doctor, doctor_id) is None:
            raise UnknownDoctorError(f"no doctor with id {doctor_id}")
        clear_override_in(session, doctor_id, day)
        for start, end in ranges or [(None, None)]:
            session.add(
                ScheduleOverride(doctor_id=doctor_id, day=day, start_time=start, end_time=end)
            )
        audit.record(session, audit.SETUP_CHANGED, doctor_id=doctor_id, staff_id=staff_id)


def clear_override(clinic: Clinic, staff_id: int | None, doctor_id: int, day: date) -> None:
    with transaction(clinic.engine) as session:
        clear_override_in(session, doctor_id, day)
        audit.record(session, audit.SETUP_CHANGED, doctor_id=doctor_id, staff_id=staff_id)


def clear_override_in(session, doctor_id: int, day: date) -> None:  # noqa: ANN001
    session.execute(
        delete(ScheduleOverride).where(
            ScheduleOverride.doctor_id == doctor_id, ScheduleOverride.day == day
        )
    )


def upcoming_visits(clinic: Clinic, doctor_id: int) -> list[StayingVisit]:
    """The doctor's booked visits still to come (they stay when the doctor is deactivated)."""
    with transaction(clinic.engine) as session:
        rows = session.execute(
            select(Appointment.id, Appointment.start_at, Patient.name)
            .outerjoin(Patient, Patient.id == Appointment.patient_id)
            .where(
                Appointment.doctor_id == doctor_id,
                Appointment.status == BOOKED,
                Appointment.start_at > clinic.now(),
            )
            .order_by(Appointment.start_at)
        ).all()
    zone = clinic.settings.zone
    return [StayingVisit(i, start.astimezone(zone), name or "") for i, start, name in rows]


def set_active(clinic: Clinic, staff_id: int | None, doctor_id: int, active: bool) -> None:
    """A deactivated doctor is offered to no one; their booked visits stay."""
    with transaction(clinic.engine) as session:
        doctor = session.get(Doctor, doctor_id)
        if doctor is None:
            raise UnknownDoctorError(f"no doctor with id {doctor_id}")
        doctor.active = int(active)
        audit.record(session, audit.SETUP_CHANGED, doctor_id=doctor_id, staff_id=staff_id)


def delete_doctor(clinic: Clinic, staff_id: int | None, doctor_id: int) -> None:
    """Only a doctor with no visit in the books, past or future, can be deleted."""
    with transaction(clinic.engine) as session:
        doctor = session.get(Doctor, doctor_id)
        if doctor is None:
            raise UnknownDoctorError(f"no doctor with id {doctor_id}")
        visits = session.scalar(
            select(func.count()).select_from(Appointment).where(Appointment.doctor_id == doctor_id)
        )
        if visits:
            raise SetupError(
                f"{doctor.name} has {visits} visit(s) in the books: deactivate them instead"
            )
        # Its hours and overrides go with it (the foreign keys cascade).
        session.execute(delete(Doctor).where(Doctor.id == doctor_id))
        audit.record(session, audit.SETUP_CHANGED, doctor_id=doctor_id, staff_id=staff_id)


def _setup(session, doctor: Doctor) -> DoctorSetup:  # noqa: ANN001
    weekly: dict[int, Ranges] = {}
    for row in session.scalars(
        select(WorkingHours)
        .where(WorkingHours.doctor_id == doctor.id)
        .order_by(WorkingHours.weekday, WorkingHours.start_time)
    ):
        weekly.setdefault(row.weekday, []).append((row.start_time, row.end_time))
    keys = tuple(k for k in (doctor.visit_types or "").split(",") if k)
    return DoctorSetup(
        doctor.id, doctor.name, doctor.slot_minutes, keys, weekly, bool(doctor.active)
    )
