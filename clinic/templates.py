"""The one place patient texts with dates are rendered, in the doctor's time zone."""

from __future__ import annotations

import string
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

# English names, so the output never depends on the process locale.
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

REQUIRED = {
    "confirmation": {"when"},
    "confirmation_save_this": {"when"},
    "slots_for_day": {"day"},
    "slot_taken": {"day"},
    "day_full": {"day"},
    "day_full_next": {"day", "next_day"},
    "your_appointment": {"when"},
    "your_appointments": set(),
    "appointment_line": {"when"},
    "cancelled": {"when"},
    "rescheduled": {"when"},
    "withdrawn_cancelled": {"when"},
    "reminder": {"when"},
}


class TemplateError(ValueError):
    """The templates file misses a text or uses a placeholder the text can't fill."""


def format_time(moment: datetime, zone: ZoneInfo) -> str:
    """'2:00 PM'"""
    local = moment.astimezone(zone)
    hour = local.hour % 12 or 12
    return f"{hour}:{local.minute:02d} {'AM' if local.hour < 12 else 'PM'}"


def format_day(day: date) -> str:
    """'Thu, Feb 5'"""
    return f"{WEEKDAYS[day.weekday()]}, {MONTHS[day.month - 1]} {day.day}"


def format_when(moment: datetime, zone: ZoneInfo) -> str:
    """'Feb 5, 2026 at 2:00 PM'"""
    local = moment.astimezone(zone)
    return f"{MONTHS[local.month - 1]} {local.day}, {local.year} at {format_time(local, zone)}"


class Templates:
    def __init__(self, texts: dict[str, str]):
        _check(texts)
        self._texts = texts

    def render(self, name: str, **values: str) -> str:
        return self._texts[name].format(**values)

    def confirmation(self, start: datetime, zone: ZoneInfo, reminder_deliverable: bool) -> str:
        name = "confirmation" if reminder_deliverable else "confirmation_save_this"
        return self.render(name, when=format_when(start, zone))


@lru_cache(maxsize=4)
def load_templates(path: Path) -> Templates:
    texts = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(texts, dict):
        raise TemplateError(f"{path} must map template names to texts")
    return Templates(texts)


def _check(texts: dict[str, str]) -> None:
    missing = sorted(set(REQUIRED) - set(texts))
    if missing:
        raise TemplateError(f"missing templates: {', '.join(missing)}")
    for name, allowed in REQUIRED.items():
        used = {field for _, field, _, _ in string.Formatter().parse(texts[name]) if field}
        if used - allowed:
            raise TemplateError(
                f"template {name!r} uses unknown placeholders {sorted(used - allowed)}"
            )
