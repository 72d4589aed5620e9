"""Reading Meta's times and accounts from a delivery: an implausible time is replaced, never
trusted, and an entry for another account is ignored (connectors/webhook.py)."""

from __future__ import annotations

import json

import pytest

from connectors.webhook import (
    AHEAD_MS,
    EARLIEST_MS,
    Ignored,
    Incoming,
    parse_delivery,
    plausible_ms,
)

NOW = 1_780_000_000_000  # 2026-05-28, the arrival time in these tests
SENT = 1_770_037_200_000  # 2026-02-02, a time Meta could send
ENTRY = 1_770_037_100_000  # the entry's own time
ACCOUNT = "17841400000000001"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (SENT, SENT),
        (str(SENT), SENT),  # digits in a string, as the dashboard's test sends them
        (EARLIEST_MS, EARLIEST_MS),  # 2010-01-01
        (NOW + AHEAD_MS, NOW + AHEAD_MS),  # a day ahead: clocks differ
        (EARLIEST_MS - 1, None),
        (NOW + AHEAD_MS + 1, None),
        (10**15, None),  # the year 33658
        (10**30, None),
        (-SENT, None),
        (0, None),
        (1527459824, None),  # seconds, not milliseconds
        (float(SENT), None),
        ("soon", None),
        ("-5", None),
        (True, None),
        (None, None),
        ([SENT], None),
    ],
)
def test_only_plausible_millisecond_times_are_read(value, expected):
    assert plausible_ms(value, NOW) == expected


def _delivery(*entries: dict) -> bytes:
    return json.dumps({"object": "instagram", "entry": list(entries)}).encode()


def _entry(*timestamps: object, time: object = ENTRY, account: object = ACCOUNT) -> dict:
    items = [
        {
            "sender": {"id": f"IG_TEST_{number}"},
            "recipient": {"id": ACCOUNT},
            "timestamp": timestamp,
            "message": {"mid": f"mid.{number}", "text": "hi"},
        }
        for number, timestamp in enumerate(timestamps)
    ]
    return {"id": account, "time": time, "messaging": items}


def _times(items: list) -> list[int]:
    assert all(isinstance(item, Incoming) for item in items)
    return [item.timestamp for item in items]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (_entry(SENT, 10**15, -1, "soon"), [SENT, ENTRY, ENTRY, ENTRY]),
        (_entry(SENT, 10**15, time=10**15), [SENT, NOW]),
        (_entry(SENT, -1, time=-1), [SENT, NOW]),
        (_entry(SENT, None, time="yesterday"), [SENT, NOW]),
        (_entry(None, time=None), [NOW]),
    ],
    ids=["bad-item-times", "entry-in-the-future", "negative-entry", "non-numeric", "none"],
)
def test_an_implausible_time_falls_back_to_the_entrys_then_to_the_arrival(entry, expected):
    assert _times(parse_delivery(_delivery(entry), now_ms=NOW)) == expected


def test_entries_for_another_account_are_ignored_when_the_account_is_known():
    body = _delivery(_entry(SENT, account="999"), _entry(SENT), _entry(SENT, account=int(ACCOUNT)))
    ignored, ours, numeric = parse_delivery(body, account_id=ACCOUNT, now_ms=NOW)
    assert ignored == Ignored("other_account")
    assert (ours.sender_id, numeric.sender_id) == ("IG_TEST_0", "IG_TEST_0")
    assert len(parse_delivery(body, now_ms=NOW)) == 3  # no INSTAGRAM_ACCOUNT_ID: every entry
