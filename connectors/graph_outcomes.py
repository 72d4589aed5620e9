"""What one Send API answer means: `Sent`, `Throttled`, `Unavailable` or `Rejected`. The
outbox's retry decisions read these and nothing else; `describe` is what a log line or a
dead letter shows of one (kinds and codes, never what the patient wrote)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

# Rate limits (4, 17, 32, 613, 80002) and transient API faults (1, 2): worth another try later.
THROTTLING_CODES = frozenset({1, 2, 4, 17, 32, 613, 80002})
# What a refusal's code means (10 only with subcode 2534022 or none).
REASONS = {10: "outside_window", 551: "recipient_unavailable", 190: "invalid_token"}


@dataclass(frozen=True)
class Sent:
    message_id: str | None  # none for a sender action


@dataclass(frozen=True)
class Throttled:
    """HTTP 429 or a rate-limit code: try again, after `retry_after` seconds when Graph says."""

    retry_after: float | None
    code: int | None


@dataclass(frozen=True)
class Unavailable:
    """No usable answer (network error, timeout, 5xx, unreadable body): try again."""

    reason: str
    retry_after: float | None = None


@dataclass(frozen=True)
class Rejected:
    """Graph refused the request for good: the same request would fail the same way."""

    code: int | None
    subcode: int | None
    http_status: int

    @property
    def reason(self) -> str:
        """ "outside_window" (only the patient can reopen it), "recipient_unavailable" (551:
        blocked us, deactivated…), "invalid_token" (190), or "rejected"."""
        if self.code == 10 and self.subcode not in (2534022, None):
            return "rejected"
        return REASONS.get(self.code, "rejected")


Outcome = Sent | Throttled | Unavailable | Rejected


def classify_response(status: int, content: bytes, retry_after: str | None = None) -> Outcome:
    """Maps one HTTP answer of `/me/messages` (status, raw body, Retry-After) onto an `Outcome`."""
    seconds = parse_retry_after(retry_after)
    try:
        body = json.loads(content)
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    errors = error if isinstance(error, dict) else {}
    code, subcode = _int(errors.get("code")), _int(errors.get("error_subcode"))
    if status == 429 or code in THROTTLING_CODES:
        return Throttled(seconds, code)
    if code is not None:
        return Rejected(code, subcode, status)
    if 200 <= status < 300:
        if isinstance(body, dict) and error is None:
            message_id = body.get("message_id")
            return Sent(message_id if isinstance(message_id, str) else None)
        return Unavailable(f"unreadable body (HTTP {status})")
    if status == 408 or status >= 500:
        return Unavailable(f"HTTP {status}", seconds if status == 503 else None)
    return Rejected(None, None, status)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header; None when absent or not a number of seconds."""
    try:
        seconds = float(value.strip()) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def describe(outcome: Throttled | Unavailable | Rejected) -> str:
    """The outcome for a log line: kind and codes, nothing the patient wrote."""
    if isinstance(outcome, Throttled):
        return f"throttled code={outcome.code} retry_after={outcome.retry_after}"
    if isinstance(outcome, Unavailable):
        return f"unavailable reason={outcome.reason!r} retry_after={outcome.retry_after}"
    return (
        f"rejected code={outcome.code} subcode={outcome.subcode} http_status={outcome.http_status}"
    )
