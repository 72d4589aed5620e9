"""Where a reminder can reach a patient, and what a reply to a reminder text asks for."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from clinic.texting import (
    CANCEL,
    CONFIRM,
    INSTAGRAM,
    OTHER,
    SMS,
    START,
    STOP,
    YES,
    channel_now,
    read_reply,
    reminder_channel,
)

MONDAY = datetime(2026, 2, 2, 15, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)


@pytest.mark.parametrize(
    ("start", "takes_texts", "sms", "channel"),
    [
        (MONDAY + 1.5 * DAY, True, True, INSTAGRAM),  # due 12 h after the last message
        (MONDAY + 2 * DAY, True, True, INSTAGRAM),  # due exactly as the window closes
        (MONDAY + 5 * DAY, True, True, SMS),
        (MONDAY + 5 * DAY, False, True, None),  # said "no texts"
        (MONDAY + 5 * DAY, True, False, None),  # no Twilio
    ],
)
def test_the_reminder_goes_where_it_can_arrive(start, takes_texts, sms, channel):
    assert reminder_channel(start, MONDAY, timedelta(hours=24), takes_texts, sms) == channel


def test_without_a_last_message_only_a_text_can_arrive():
    assert reminder_channel(MONDAY + DAY, None, timedelta(hours=24), True, True) == SMS
    assert channel_now(MONDAY, None, False, True) is None
    assert channel_now(MONDAY, MONDAY - timedelta(hours=23), True, True) == INSTAGRAM
    assert channel_now(MONDAY, MONDAY - timedelta(hours=25), True, True) == SMS


@pytest.mark.parametrize(
    ("body", "cancel_asked", "meaning"),
    [
        ("C", False, CONFIRM),
        ("c", False, CONFIRM),
        ("Confirm", False, CONFIRM),
        ("yes", False, CONFIRM),
        ("YES", True, YES),
        ("Yes!", True, YES),
        ("X", False, CANCEL),
        ("cancel", False, CANCEL),
        ("Cancel please", False, CANCEL),
        ("STOP", False, STOP),
        ("unsubscribe", True, STOP),
        ("START", False, START),
        ("what time is it again?", False, OTHER),
        ("can I come at 3 instead", True, OTHER),
    ],
)
def test_a_reply_is_read_for_what_it_asks(body, cancel_asked, meaning):
    assert read_reply(body, cancel_asked) == meaning
