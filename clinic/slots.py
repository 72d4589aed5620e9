"""Pure slot maths: which starts of one day are free. No clock, no database.

Worked example: hours 9:00-12:00, 30-minute slots, a block 10:00-10:30
-> 9:00, 9:30, 10:30, 11:00, 11:30; a 60-minute visit on the same 30-minute grid
-> 9:00, 10:30, 11:00.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Interval:
    """A half-open time range [start, end), held in UTC.

    Python compares two datetimes of the same zone by wall time, which is wrong
    around a clock change; in UTC every comparison is by instant.
    """

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", self.start.astimezone(timezone.utc))
        object.__setattr__(self, "end", self.end.astimezone(timezone.utc))

    def overlaps(self, other: Interval) -> bool:
        return self.start < other.end and other.start < self.end

    def covers(self, other: Interval) -> bool:
        return self.start <= other.start and other.end <= self.end


@dataclass(frozen=True)
class SlotRules:
    """What limits booking besides the schedule: notice and horizon."""

    min_notice: timedelta
    horizon_days: int

    def last_bookable_day(self, now: datetime, zone: ZoneInfo) -> date:
        return now.astimezone(zone).date() + timedelta(days=self.horizon_days)


def day_bounds(day: date, zone: ZoneInfo) -> Interval:
    """The instants a local calendar day covers (23 or 25 hours on DST days)."""
    start = datetime.combine(day, time.min, tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
    return Interval(start.astimezone(timezone.utc), end.astimezone(timezone.utc))


def free_slots(
    day: date,
    zone: ZoneInfo,
    hours: Iterable[tuple[time, time]],
    slot_length: timedelta,
    busy: Sequence[Interval],
    now: datetime,
    rules: SlotRules,
    step: timedelta | None = None,
) -> list[datetime]:
    """Starts (aware, in `zone`) of the slots of `day` that can still be booked.

    Starts lie on the doctor's grid (`step`, by default `slot_length`) from each range's
    start, in real elapsed time, so a range that spans a clock change has the right number
    of slots. A slot lasts `slot_length` (a visit type's length), must end by the range
    end, overlap nothing in `busy`, start at least `rules.min_notice` after `now`, and lie
    within the horizon.
    """
    if day > rules.last_bookable_day(now, zone):
        return []
    earliest = now + rules.min_notice
    starts: list[datetime] = []
    for opens, closes in sorted(hours):
        range_start = _local_instant(day, opens, zone)
        range_end = _local_instant(day, closes, zone)
        slot_start = range_start
        while slot_start + slot_length <= range_end:
            slot = Interval(slot_start, slot_start + slot_length)
            if slot_start >= earliest and not any(slot.overlaps(b) for b in busy):
                starts.append(slot_start.astimezone(zone))
            slot_start += step or slot_length
    return starts


def _local_instant(day: date, wall_time: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock time; a time skipped by DST moves forward."""
    return datetime.combine(day, wall_time, tzinfo=zone).astimezone(timezone.utc)
