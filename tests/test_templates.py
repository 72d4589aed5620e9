"""Patient texts with dates, in the doctor's time zone."""

from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from clinic.settings import DEFAULT_TEMPLATES_PATH
from clinic.templates import format_day, format_when, load_templates

NEW_YORK = ZoneInfo("America/New_York")


def test_the_confirmation_reads_exactly_as_promised():
    templates = load_templates(DEFAULT_TEMPLATES_PATH)
    start = datetime(2026, 2, 5, 19, 0, tzinfo=timezone.utc)
    assert templates.confirmation(start, NEW_YORK, "instagram") == (
        "Your appointment is confirmed for Feb 5, 2026 at 2:00 PM. We'll send you a reminder here."
    )
    assert templates.confirmation(start, NEW_YORK, "sms") == (
        "Your appointment is confirmed for Feb 5, 2026 at 2:00 PM. "
        "We'll text you a reminder the day before."
    )
    assert templates.confirmation(start, NEW_YORK, None).endswith(
        "Please save this message: Instagram only lets us write to you within 24 hours of your "
        "last message, so a reminder may not reach you."
    )


def test_with_a_choice_of_doctors_the_confirmation_names_the_visit_and_doctor():
    templates = load_templates(DEFAULT_TEMPLATES_PATH)
    start = datetime(2026, 2, 5, 19, 0, tzinfo=timezone.utc)
    confirmation = templates.confirmation(
        start, NEW_YORK, "instagram", visit="Procedure", doctor="Dr. Smith"
    )
    assert confirmation == (
        "Your appointment is confirmed for Feb 5, 2026 at 2:00 PM: Procedure with Dr. Smith. "
        "We'll send you a reminder here."
    )


@pytest.mark.parametrize(
    ("instant", "zone", "text"),
    [
        (datetime(2026, 2, 5, 19, 0, tzinfo=timezone.utc), NEW_YORK, "Feb 5, 2026 at 2:00 PM"),
        (datetime(2026, 7, 5, 18, 0, tzinfo=timezone.utc), NEW_YORK, "Jul 5, 2026 at 2:00 PM"),
        (datetime(2026, 3, 8, 5, 0, tzinfo=timezone.utc), NEW_YORK, "Mar 8, 2026 at 12:00 AM"),
        (
            datetime(2026, 12, 31, 23, 30, tzinfo=timezone.utc),
            ZoneInfo("Europe/Berlin"),
            "Jan 1, 2027 at 12:30 AM",
        ),
        (
            datetime(2026, 6, 1, 10, 5, tzinfo=timezone.utc),
            ZoneInfo("Europe/Berlin"),
            "Jun 1, 2026 at 12:05 PM",
        ),
    ],
)
def test_times_are_shown_in_the_doctors_zone_with_daylight_saving(instant, zone, text):
    assert format_when(instant, zone) == text


def test_days_read_like_thu_feb_5():
    assert format_day(date(2026, 2, 5)) == "Thu, Feb 5"
