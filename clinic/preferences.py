"""Time-of-day wishes ("morning", "after 3", "before noon", "earliest"): which of a day's
free times they leave. Pure: the adapters read the words, the core picks the times.

Worked example: free 9:00, 9:30, 13:00, 16:30 -> "afternoon" leaves 13:00, 16:30;
"after 15:00" leaves 16:30; "earliest" leaves 9:00, 9:30, 13:00.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

# How many times "earliest" and "latest" offer.
SHOWN = 3
WINDOWS = {
    "morning": (time(0), time(12)),
    "afternoon": (time(12), time(17)),
    "evening": (time(17), time.max),
}


@dataclass(frozen=True)
class TimeOfDay:
    """A wish, stored in a conversation as its `code`: "morning", "after 15:00",
    "before 12:00", "earliest" or "latest"."""

    code: str

    def pick(self, starts: list[datetime], zone: ZoneInfo) -> list[datetime]:
        """The starts (earliest first) that the wish leaves."""
        if self.code == "earliest":
            return starts[:SHOWN]
        if self.code == "latest":
            return starts[-SHOWN:]
        after, before = self.window
        return [s for s in starts if after <= s.astimezone(zone).time() < before]

    @property
    def bounded_by_a_clock_time(self) -> bool:
        """ "after 15:00", "before 12:00": a time is named, but a range is meant."""
        return self.code.startswith(("after ", "before "))

    @property
    def window(self) -> tuple[time, time]:
        if self.code in WINDOWS:
            return WINDOWS[self.code]
        word, clock = self.code.split(" ", 1)
        at = time.fromisoformat(clock)
        return (at, time.max) if word == "after" else (time(0), at)

    @classmethod
    def parse(cls, code: str | None) -> TimeOfDay | None:
        """The wish a stored code names; None for none or anything unreadable."""
        if not isinstance(code, str):
            return None
        if code in ("earliest", "latest") or code in WINDOWS:
            return cls(code)
        word, _, clock = code.partition(" ")
        try:
            time.fromisoformat(clock)
        except ValueError:
            return None
        return cls(code) if word in ("after", "before") else None
