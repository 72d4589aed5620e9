"""The pure slot maths on hand-made schedules, with a frozen `now` and exact offsets."""

from __future__ import annotations

import itertools
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from clinic.slots import Interval, SlotRules, free_slots

NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
HALF_HOUR = timedelta(minutes=30)
NO_NOTICE = SlotRules(min_notice=timedelta(0), horizon_days=60)
# Before every day used below and within the horizon of all, so only the schedule matters.
EARLY = datetime(2026, 1, 30, tzinfo=timezone.utc)


def local(day: date, hour: int, minute: int = 0, zone: ZoneInfo = NEW_YORK) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=zone)


def the_day_before(day: date) -> datetime:
    return datetime.combine(day - timedelta(days=1), time(0), tzinfo=timezone.utc)


def iso(slots: list[datetime]) -> list[str]:
    return [s.isoformat() for s in slots]


def clock_times(slots: list[datetime]) -> list[str]:
    return [f"{s:%H:%M}" for s in slots]


MONDAY = date(2026, 2, 2)


def test_worked_example_block_in_the_morning():
    slots = free_slots(
        MONDAY,
        NEW_YORK,
        [(time(9), time(12))],
        HALF_HOUR,
        busy=[Interval(local(MONDAY, 10), local(MONDAY, 10, 30))],
        now=EARLY,
        rules=NO_NOTICE,
    )
    assert iso(slots) == [
        "2026-02-02T09:00:00-05:00",
        "2026-02-02T09:30:00-05:00",
        "2026-02-02T10:30:00-05:00",
        "2026-02-02T11:00:00-05:00",
        "2026-02-02T11:30:00-05:00",
    ]


def test_lunch_between_two_ranges_is_not_offered():
    hours = [(time(13), time(15)), (time(9), time(12))]  # order of rows does not matter
    slots = free_slots(MONDAY, NEW_YORK, hours, HALF_HOUR, [], EARLY, NO_NOTICE)
    assert clock_times(slots) == [
        "09:00",
        "09:30",
        "10:00",
        "10:30",
        "11:00",
        "11:30",
        "13:00",
        "13:30",
        "14:00",
        "14:30",
    ]


def test_overlapping_blocks_and_a_booking_remove_exactly_what_they_cover():
    busy = [
        Interval(local(MONDAY, 9, 15), local(MONDAY, 10, 15)),  # off the grid
        Interval(local(MONDAY, 10), local(MONDAY, 10, 45)),  # overlaps the first
        Interval(local(MONDAY, 11, 30), local(MONDAY, 12)),  # a booking
    ]
    slots = free_slots(MONDAY, NEW_YORK, [(time(9), time(12))], HALF_HOUR, busy, EARLY, NO_NOTICE)
    assert clock_times(slots) == ["11:00"]


def test_a_slot_that_would_end_after_closing_is_dropped():
    slots = free_slots(MONDAY, NEW_YORK, [(time(9), time(10, 45))], HALF_HOUR, [], EARLY, NO_NOTICE)
    assert clock_times(slots) == ["09:00", "09:30", "10:00"]


def test_a_block_that_ends_exactly_at_a_slot_start_leaves_it_free():
    busy = [Interval(local(MONDAY, 8), local(MONDAY, 9, 30))]
    slots = free_slots(MONDAY, NEW_YORK, [(time(9), time(10))], HALF_HOUR, busy, EARLY, NO_NOTICE)
    assert clock_times(slots) == ["09:30"]


def test_minimum_notice_counts_from_now():
    now = local(MONDAY, 10, 10).astimezone(timezone.utc)
    rules = SlotRules(min_notice=timedelta(hours=2), horizon_days=60)
    slots = free_slots(MONDAY, NEW_YORK, [(time(9), time(17))], HALF_HOUR, [], now, rules)
    assert slots[0].isoformat() == "2026-02-02T12:30:00-05:00"
    assert len(slots) == 9


def test_a_slot_exactly_at_the_notice_limit_is_offered():
    now = local(MONDAY, 10).astimezone(timezone.utc)
    rules = SlotRules(min_notice=timedelta(hours=2), horizon_days=60)
    slots = free_slots(MONDAY, NEW_YORK, [(time(9), time(13))], HALF_HOUR, [], now, rules)
    assert clock_times(slots) == ["12:00", "12:30"]


def test_a_past_day_has_no_slots():
    now = local(MONDAY, 8).astimezone(timezone.utc)
    yesterday = MONDAY - timedelta(days=1)
    assert (
        free_slots(yesterday, NEW_YORK, [(time(9), time(17))], HALF_HOUR, [], now, NO_NOTICE) == []
    )


def test_the_horizon_is_the_last_bookable_day():
    now = local(MONDAY, 8).astimezone(timezone.utc)
    rules = SlotRules(min_notice=timedelta(0), horizon_days=60)
    hours = [(time(9), time(10))]
    last = MONDAY + timedelta(days=60)
    assert clock_times(free_slots(last, NEW_YORK, hours, HALF_HOUR, [], now, rules)) == [
        "09:00",
        "09:30",
    ]
    assert free_slots(last + timedelta(days=1), NEW_YORK, hours, HALF_HOUR, [], now, rules) == []


# Clock changes in 2026: New York Mar 8 (spring) and Nov 1 (fall); Berlin Mar 29 and Oct 25.
@pytest.mark.parametrize(
    ("day", "zone", "first", "last"),
    [
        (date(2026, 3, 8), NEW_YORK, "2026-03-08T09:00:00-04:00", "2026-03-08T16:30:00-04:00"),
        (date(2026, 11, 1), NEW_YORK, "2026-11-01T09:00:00-05:00", "2026-11-01T16:30:00-05:00"),
        (date(2026, 3, 29), BERLIN, "2026-03-29T09:00:00+02:00", "2026-03-29T16:30:00+02:00"),
        (date(2026, 10, 25), BERLIN, "2026-10-25T09:00:00+01:00", "2026-10-25T16:30:00+01:00"),
    ],
)
def test_office_hours_on_a_clock_change_day_keep_their_wall_times(day, zone, first, last):
    slots = free_slots(
        day, zone, [(time(9), time(17))], HALF_HOUR, [], the_day_before(day), NO_NOTICE
    )
    assert len(slots) == 16
    assert (slots[0].isoformat(), slots[-1].isoformat()) == (first, last)
    assert all(b - a == HALF_HOUR for a, b in itertools.pairwise(slots))


def test_hours_across_spring_forward_lose_the_skipped_hour():
    day = date(2026, 3, 8)
    slots = free_slots(
        day, NEW_YORK, [(time(1), time(4))], HALF_HOUR, [], the_day_before(day), NO_NOTICE
    )
    assert iso(slots) == [
        "2026-03-08T01:00:00-05:00",
        "2026-03-08T01:30:00-05:00",
        "2026-03-08T03:00:00-04:00",
        "2026-03-08T03:30:00-04:00",
    ]


def test_hours_across_fall_back_get_the_repeated_hour():
    day = date(2026, 10, 25)
    slots = free_slots(
        day, BERLIN, [(time(1), time(4))], HALF_HOUR, [], the_day_before(day), NO_NOTICE
    )
    assert iso(slots) == [
        "2026-10-25T01:00:00+02:00",
        "2026-10-25T01:30:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T02:30:00+01:00",
        "2026-10-25T03:00:00+01:00",
        "2026-10-25T03:30:00+01:00",
    ]


def test_arguments_are_not_mutated():
    busy = [Interval(local(MONDAY, 10), local(MONDAY, 11))]
    hours = [(time(9), time(12))]
    snapshot = (list(busy), list(hours))
    free_slots(MONDAY, NEW_YORK, hours, HALF_HOUR, busy, EARLY, NO_NOTICE)
    assert (busy, hours) == snapshot


SCENARIOS = [
    # (zone, day, hours, slot minutes, busy as (start h:m, end h:m), now as local h:m on the day)
    (NEW_YORK, MONDAY, [(9, 0, 17, 0)], 30, [((12, 0), (13, 0))], (8, 0)),
    (NEW_YORK, MONDAY, [(9, 0, 12, 0), (13, 0, 17, 0)], 20, [((9, 10), (9, 50))], (11, 5)),
    (
        BERLIN,
        date(2026, 3, 29),
        [(0, 0, 23, 0)],
        45,
        [((2, 0), (3, 30)), ((10, 0), (10, 1))],
        (0, 0),
    ),
    (NEW_YORK, date(2026, 11, 1), [(0, 30, 6, 0)], 15, [((1, 0), (1, 20))], (0, 40)),
    (
        BERLIN,
        date(2026, 10, 25),
        [(8, 0, 18, 0)],
        60,
        [((7, 0), (9, 30)), ((17, 30), (20, 0))],
        (9, 0),
    ),
]


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("notice_minutes", [0, 90])
def test_invariants_no_overlap_no_past_inside_hours_on_the_grid(scenario, notice_minutes):
    zone, day, hours, minutes, busy_spec, (now_h, now_m) = scenario
    length = timedelta(minutes=minutes)
    ranges = [(time(a, b), time(c, d)) for a, b, c, d in hours]
    busy = [Interval(local(day, *s, zone=zone), local(day, *e, zone=zone)) for s, e in busy_spec]
    now = local(day, now_h, now_m, zone=zone).astimezone(timezone.utc)
    rules = SlotRules(min_notice=timedelta(minutes=notice_minutes), horizon_days=60)
    slots = free_slots(day, zone, ranges, length, busy, now, rules)
    assert slots, "each scenario leaves something free"
    assert all(s.tzinfo is zone for s in slots)
    instants = [s.astimezone(timezone.utc) for s in slots]  # compare instants, not wall times
    assert instants == sorted(instants)
    opening = [
        Interval(local(day, o.hour, o.minute, zone), local(day, c.hour, c.minute, zone))
        for o, c in ranges
    ]
    for start in instants:
        slot = Interval(start, start + length)
        assert start >= now + rules.min_notice
        assert not any(slot.overlaps(b) for b in busy)
        assert start.astimezone(zone).date() == day
        (hours_range,) = [h for h in opening if h.start <= start < h.end]
        assert slot.end <= hours_range.end
        assert (start - hours_range.start) % length == timedelta(0)
