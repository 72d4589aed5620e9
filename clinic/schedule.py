"""The calendar staff read: a doctor's week and the whole clinic's day, as rows of a time
grid with the free slots, the visits (who, which visit, booked where) and the blocked times.

Read only, one transaction per view, three queries whatever the number of visits. Times
are shown in the clinic's zone. Worked example: Dr. A works 9:00-10:00 on 30-minute
slots, a visit at 9:30 -> rows 9:00, 9:30; cells: 9:00 free, 9:30 the visit.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from clinic.availability import MAX_APPOINTMENT_LENGTH, Hours, doctor_hours
from clinic.context import Clinic
from clinic.db import transaction
from clinic.doctors import active_doctors
from clinic.errors import UnknownDoctorError
from clinic.models import (
    BOOKED,
    NOTICE_CALL,
    Appointment,
    BlockedTime,
    Doctor,
    Patient,
    StaffNotice,
)
from clinic.profile_store import visit_names
from clinic.slots import Interval, day_bounds

UTC = timezone.utc
FREE = "free"
PAST = "past"


@dataclass(frozen=True)
class Visit:
    """An active appointment as the front desk sees it."""

    id: int
    doctor_id: int
    start: datetime  # in the clinic's zone
    end: datetime
    patient_id: int | None  # None once the patient erased their data
    patient_name: str
    phone: str
    visit: str  # the visit type's name
    source: str  # where it was booked: instagram, phone, walk_in
    to_call: bool  # the clinic changed it and must still call the patient
    confirmed: bool = False  # the patient confirmed it (a reminder text's "C")


@dataclass(frozen=True)
class Block:
    id: int
    start: datetime
    end: datetime
    reason: str
    whole_clinic: bool


@dataclass(frozen=True)
class Cell:
    """One thing in a column of the grid, from row `row` over `rows` rows."""

    row: int
    rows: int
    start: datetime
    kind: str  # FREE, PAST, "visit" or "block"
    visit: Visit | None = None
    block: Block | None = None


@dataclass(frozen=True)
class Column:
    title: str
    day: date
    doctor_id: int
    cells: list[Cell]
    closed: bool  # no working hours that day


@dataclass(frozen=True)
class Grid:
    rows: list[time]  # the wall-clock time each row starts at
    step: timedelta
    columns: list[Column]
    visits: int = field(default=0)


def week_start(day: date) -> date:
    """The Monday of `day`'s week."""
    return day - timedelta(days=day.weekday())


def doctor_week(clinic: Clinic, doctor_id: int, monday: date) -> Grid:
    """The doctor's seven days from `monday`: one column a day."""
    zone = clinic.settings.zone
    days = [monday + timedelta(days=n) for n in range(7)]
    window = Interval(day_bounds(days[0], zone).start, day_bounds(days[-1], zone).end)
    with transaction(clinic.engine) as session:
        doctor = session.get(Doctor, doctor_id)
        if doctor is None:
            raise UnknownDoctorError(f"no doctor with id {doctor_id}")
        hours = {doctor.id: doctor_hours(session, doctor.id, days[0], days[-1])}
        visits = _visits(session, [doctor.id], window, zone)
        blocks = _blocks(session, [doctor.id], window, zone)
    step = timedelta(minutes=doctor.slot_minutes)
    columns = [(day, doctor, f"{day:%a} {day.day}") for day in days]  # titles: "Mon 2"
    return _grid(clinic, columns, hours, visits, blocks, step)


def clinic_day(clinic: Clinic, day: date) -> Grid:
    """Every active doctor's `day`: one column a doctor."""
    zone = clinic.settings.zone
    window = day_bounds(day, zone)
    with transaction(clinic.engine) as session:
        doctors = active_doctors(session)
        ids = [d.id for d in doctors]
        hours = {d.id: doctor_hours(session, d.id, day, day) for d in doctors}
        visits = _visits(session, ids, window, zone)
        blocks = _blocks(session, ids, window, zone)
    step = timedelta(minutes=min((d.slot_minutes for d in doctors), default=30))
    columns = [(day, d, d.name) for d in doctors]
    return _grid(clinic, columns, hours, visits, blocks, step)


def _grid(
    clinic: Clinic,
    columns: list[tuple[date, Doctor, str]],
    hours: dict[int, Hours],
    visits: dict[int, list[Visit]],
    blocks: dict[int | None, list[Block]],
    step: timedelta,
) -> Grid:
    zone = clinic.settings.zone
    now = clinic.now()
    first, last = _span(columns, hours, visits, blocks, zone)
    rows = _rows(first, last, step)
    built = []
    total = 0
    for day, doctor, title in columns:
        ranges = hours[doctor.id].on(day)
        bounds = day_bounds(day, zone)
        day_visits = [v for v in visits.get(doctor.id, []) if v.start.date() == day]
        day_blocks = [
            b
            for b in [*blocks.get(doctor.id, []), *blocks.get(None, [])]
            if Interval(b.start, b.end).overlaps(bounds)
        ]
        cells = [_visit_cell(v, first, step) for v in day_visits]
        cells += [_block_cell(b, day, first, last, step, zone) for b in day_blocks]
        taken = _merged(
            [(v.start, v.end) for v in day_visits] + [(b.start, b.end) for b in day_blocks]
        )
        slot = timedelta(minutes=doctor.slot_minutes)
        for opens, closes in sorted(ranges):
            start = datetime.combine(day, opens, tzinfo=zone)
            end = datetime.combine(day, closes, tzinfo=zone)
            while start + slot <= end:
                if not _overlaps(start, start + slot, taken):
                    kind = FREE if start > now else PAST
                    cells.append(
                        Cell(_row(start, first, step), _span_rows(slot, step), start, kind)
                    )
                start += slot
        cells.sort(key=lambda c: (c.row, c.start))
        total += len(day_visits)
        built.append(Column(title, day, doctor.id, cells, closed=not ranges))
    return Grid(rows, step, built, total)


def _merged(intervals: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """The intervals as disjoint UTC ranges, in order (comparisons by instant, DST-safe)."""
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted((s.astimezone(UTC), e.astimezone(UTC)) for s, e in intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _overlaps(start: datetime, end: datetime, taken: list[tuple[datetime, datetime]]) -> bool:
    """[start, end) meets one of the disjoint, ordered `taken` ranges."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    index = bisect.bisect_right(taken, (start, start))
    # The range that begins last at or before `start`, and the next one.
    return any(
        taken[i][0] < end and start < taken[i][1] for i in (index - 1, index) if 0 <= i < len(taken)
    )


def _span(columns, hours, visits, blocks, zone: ZoneInfo) -> tuple[time, time]:
    """The earliest and latest wall-clock times the columns need (8:00-17:00 when empty)."""
    opens, closes = [], []
    for day, doctor, _ in columns:
        for start, end in hours[doctor.id].on(day):
            opens.append(start)
            closes.append(end)
        for visit in visits.get(doctor.id, []):
            if visit.start.date() == day:
                opens.append(visit.start.time())
                closes.append(visit.end.time() if visit.end.date() == day else time.max)
    if not opens:
        return time(8), time(17)
    return min(opens), max(closes)


def _rows(first: time, last: time, step: timedelta) -> list[time]:
    rows = []
    moment = datetime.combine(date.min, first)
    end = datetime.combine(date.min, last)
    while moment < end:
        rows.append(moment.time())
        moment += step
    return rows or [first]


def _row(start: datetime, first: time, step: timedelta) -> int:
    """The row a wall-clock time falls in (before the first row: the first)."""
    offset = datetime.combine(date.min, start.time()) - datetime.combine(date.min, first)
    return max(0, int(offset / step))


def _span_rows(length: timedelta, step: timedelta) -> int:
    return max(1, -(-length // step))  # rounded up


def _visit_cell(visit: Visit, first: time, step: timedelta) -> Cell:
    return Cell(
        _row(visit.start, first, step),
        _span_rows(visit.end - visit.start, step),
        visit.start,
        "visit",
        visit=visit,
    )


def _block_cell(
    block: Block, day: date, first: time, last: time, step: timedelta, zone: ZoneInfo
) -> Cell:
    """The part of a block inside the day's rows."""
    start = max(block.start, datetime.combine(day, first, tzinfo=zone))
    end = min(block.end, datetime.combine(day, last, tzinfo=zone))
    end = max(end, start + step)
    return Cell(
        _row(start, first, step), _span_rows(end - start, step), start, "block", block=block
    )


def _visits(
    session: Session, doctor_ids: list[int], window: Interval, zone: ZoneInfo
) -> dict[int, list[Visit]]:
    names = visit_names(session)
    rows = session.execute(
        select(
            Appointment.id,
            Appointment.doctor_id,
            Appointment.start_at,
            Appointment.end_at,
            Appointment.patient_id,
            Appointment.visit_type,
            Appointment.source,
            Appointment.confirmed_at,
            Patient.name,
            Patient.phone,
        )
        .outerjoin(Patient, Appointment.patient_id == Patient.id)
        .where(
            Appointment.doctor_id.in_(doctor_ids),
            Appointment.status == BOOKED,
            Appointment.start_at >= window.start - MAX_APPOINTMENT_LENGTH,
            Appointment.start_at < window.end,
        )
        .order_by(Appointment.start_at)
    ).all()
    to_call = set(
        session.scalars(
            select(StaffNotice.appointment_id).where(
                StaffNotice.appointment_id.in_([r.id for r in rows]),
                StaffNotice.channel == NOTICE_CALL,
                StaffNotice.done_at.is_(None),
            )
        )
    )
    visits: dict[int, list[Visit]] = defaultdict(list)
    for row in rows:
        visits[row.doctor_id].append(
            Visit(
                id=row.id,
                doctor_id=row.doctor_id,
                start=row.start_at.astimezone(zone),
                end=row.end_at.astimezone(zone),
                patient_id=row.patient_id,
                patient_name=row.name or "",
                phone=row.phone or "",
                visit=names.get(row.visit_type or "", row.visit_type),
                source=row.source,
                to_call=row.id in to_call,
                confirmed=row.confirmed_at is not None,
            )
        )
    return visits


def _blocks(
    session: Session, doctor_ids: list[int], window: Interval, zone: ZoneInfo
) -> dict[int | None, list[Block]]:
    rows = session.execute(
        select(BlockedTime).where(
            or_(BlockedTime.doctor_id.in_(doctor_ids), BlockedTime.doctor_id.is_(None)),
            BlockedTime.end_at > window.start,
            BlockedTime.start_at < window.end,
        )
    ).scalars()
    blocks: dict[int | None, list[Block]] = defaultdict(list)
    for row in rows:
        blocks[row.doctor_id].append(
            Block(
                row.id,
                row.start_at.astimezone(zone),
                row.end_at.astimezone(zone),
                row.reason,
                row.doctor_id is None,
            )
        )
    return blocks
