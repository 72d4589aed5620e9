"""Reading patients' answers, as they actually write them."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from actions.parsing import (
    extract_name,
    find_clock_time,
    parse_day,
    parse_list_index,
    parse_slot_choice,
    parse_yes_no,
)

MONDAY = date(2026, 2, 2)
NEW_YORK = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("today", date(2026, 2, 2)),
        ("tomorrow", date(2026, 2, 3)),
        ("tmrw pls", date(2026, 2, 3)),
        ("tomorow", date(2026, 2, 3)),
        ("Tomorrow morning?", date(2026, 2, 3)),
        ("day after tomorrow", date(2026, 2, 4)),
        ("book me for next tuesday", date(2026, 2, 3)),
        ("can I see the doctor friday?", date(2026, 2, 6)),
        ("fri", date(2026, 2, 6)),
        ("thurs", date(2026, 2, 5)),
        ("wendsday", date(2026, 2, 4)),
        ("monday", date(2026, 2, 2)),
        ("next monday", date(2026, 2, 9)),
        ("in 3 days", date(2026, 2, 5)),
        ("in a week", date(2026, 2, 9)),
        ("next week", date(2026, 2, 9)),
        ("Feb 5", date(2026, 2, 5)),
        ("february 5th", date(2026, 2, 5)),
        ("febuary 5", date(2026, 2, 5)),
        ("5 feb", date(2026, 2, 5)),
        ("the 5th of March", date(2026, 3, 5)),
        ("on the 10th", date(2026, 2, 10)),
        ("the 1st", date(2026, 3, 1)),
        ("2/5", date(2026, 2, 5)),
        ("3/3/2026", date(2026, 3, 3)),
        ("2026-02-05", date(2026, 2, 5)),
        ("I need an appointment tomorrow", date(2026, 2, 3)),
        ("jan 10", date(2027, 1, 10)),
    ],
)
def test_days_are_read_the_way_people_write_them(text, expected):
    assert parse_day(text, MONDAY) == expected


@pytest.mark.parametrize("text", ["", "hello", "book an appointment", "2", "asap", "31/31"])
def test_no_day_is_invented(text):
    assert parse_day(text, MONDAY) is None


def test_day_month_order_follows_the_region():
    assert parse_day("2/5", MONDAY, date_order="DMY") == date(2026, 5, 2)


OFFERED = [
    datetime.combine(date(2026, 2, 5), time(h, m), tzinfo=NEW_YORK)
    for h, m in [(9, 0), (9, 30), (10, 0), (13, 0), (14, 0), (14, 30), (16, 30)]
]


@pytest.mark.parametrize(
    ("text", "index"),
    [
        ("2", 1),
        (" 7 ", 6),
        ("2:30", 5),
        ("2:30pm", 5),
        ("2:30 PM", 5),
        ("14:30", 5),
        ("at 2", 4),
        ("2pm", 4),
        ("9", 0),  # not an index (only 7 options): 9:00
        ("9:30am", 1),
        ("the second one", 1),
        ("secnd", 1),
        ("2nd", 1),
        ("third please", 2),
        ("option 4", 3),
        ("number 3", 2),
        ("#5", 4),
        ("last one", 6),
        ("the first", 0),
        ("three", 2),
        ("option two", 1),
        ("1pm", 3),
        ("4.30pm", 6),
        ("2026-02-05T14:30:00-05:00", 5),
    ],
)
def test_slot_answers_pick_the_right_offer(text, index):
    assert parse_slot_choice(text, OFFERED, NEW_YORK) == OFFERED[index]


@pytest.mark.parametrize(
    "text",
    [
        "0",
        "8",
        "12:15",
        "3pm",
        "eighth",
        "maybe",
        "",
        "2026-02-05T11:00:00-05:00",
        "9:00pm",
        "the purple one",
        "any one is fine",
    ],
)
def test_slot_answers_that_pick_nothing_are_none(text):
    assert parse_slot_choice(text, OFFERED, NEW_YORK) is None


def test_list_index_bounds():
    assert parse_list_index("1", 1) == 0
    assert parse_list_index("2", 1) is None


@pytest.mark.parametrize(
    ("text", "intent", "answer"),
    [
        ("yes", None, True),
        ("yes pls", None, True),
        ("ok 👍", None, True),
        ("sure, go ahead", None, True),
        ("no", None, False),
        ("nope", None, False),
        ("no thanks", None, False),
        ("whatever", "affirm", True),
        ("whatever", "deny", False),
        ("what data?", None, None),
        ("yes and no", None, None),
    ],
)
def test_yes_no(text, intent, answer):
    assert parse_yes_no(text, intent) is answer


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("PATIENT_TEST", "PATIENT_TEST"),
        ("my name is PATIENT_TEST", "PATIENT_TEST"),
        ("My full name is Patient Test.", "Patient Test"),
        ("I'm Patient!", "Patient"),
        ("im Test Patient", "Test Patient"),
        ("it's Patient-Test Two", "Patient-Test Two"),
        ("name: O'Test", "O'Test"),
        ("hi, I'm Test Person", "Test Person"),
        ("call me Tester", "Tester"),
        ("Metest", "Metest"),
    ],
)
def test_names_come_without_the_words_around_them(text, name):
    assert extract_name(text) == name


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("book me tomorrow at 3pm", "at 3pm"),
        ("friday 2:30", "2:30"),
        ("can I come in at 10 on monday", "at 10"),
        ("thursday around noon", "noon"),
        ("next tuesday", None),
        ("the 5th", None),
        ("2/5", None),
        ("my number is 212 555 0199", None),
        ("is there anything after 4pm on monday", None),  # a wish, not a pick
        ("monday before 10:30 please", None),
        ("after 3pm, or at 5pm", "at 5pm"),
    ],
)
def test_a_time_named_in_a_longer_message_is_found(text, found):
    assert find_clock_time(text) == found
