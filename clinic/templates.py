"""The texts the actions write to patients, loaded from an editable file, and the one
date formatter (dates in the doctor's time zone)."""

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

# Every text the code renders, with the placeholders the code fills in.
REQUIRED: dict[str, set[str]] = {
    "greeting": set(),
    "greeting_returning": {"first_name"},
    "confirmation": {"when"},
    "confirmation_save_this": {"when"},
    "rescheduled": {"when"},
    "rescheduled_save_this": {"when"},
    "reminder": {"when"},
    "ask_day": set(),
    "slots_for_day": {"day"},
    "slot_taken": {"day"},
    "day_full_next": {"day", "next_day"},
    "slot_taken_day_full": {"day", "next_day"},
    "time_not_free": {"time", "day"},
    "slot_list_footer": set(),
    "slot_reprompt": {"count", "example"},
    "no_free_days": {"day", "last_day"},
    "unreadable_day": set(),
    "day_past": {"day"},
    "day_too_far": {"last_day"},
    "need_consent": set(),
    "booking_unavailable": set(),
    "ask_consent": set(),
    "consent_yes_button": set(),
    "consent_no_button": set(),
    "yes_or_no": set(),
    "ask_name": set(),
    "invalid_name": set(),
    "ask_phone": set(),
    "invalid_phone": set(),
    "your_appointment": {"when"},
    "your_appointments": set(),
    "no_appointments": set(),
    "choose_appointment": set(),
    "choose_number": {"count"},
    "confirm_cancel": {"when"},
    "cancel_yes_button": set(),
    "cancel_no_button": set(),
    "kept": {"when"},
    "cancelled": {"when"},
    "already_cancelled": set(),
    "appointment_gone": set(),
    "not_understood": set(),
    "book_button": {"day"},
    "book_at_button": {"day", "time"},
    "book_any_button": set(),
    "show_button": set(),
    "person_button": set(),
    "stopped_booking": set(),
    "stopped": set(),
    "handoff": set(),
    "aside_greet": set(),
    "aside_thanks": set(),
    "aside_bot": set(),
    "aside_out_of_scope": set(),
    "aside_privacy": set(),
    "aside_other": set(),
    "carry_on": set(),
    "ask_delete": set(),
    "delete_yes_button": set(),
    "delete_no_button": set(),
    "deleted": set(),
    "withdrawn_cancelled": {"when"},
    "nothing_stored": set(),
    "kept_details": set(),
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


def format_short(moment: datetime, zone: ZoneInfo) -> str:
    """'Feb 5, 2:00 PM' (fits a 20-character quick reply)"""
    local = moment.astimezone(zone)
    return f"{MONTHS[local.month - 1]} {local.day}, {format_time(local, zone)}"


class Templates:
    def __init__(self, texts: dict[str, str]):
        _check(texts)
        self._texts = texts

    def render(self, name: str, **values: str) -> str:
        return self._texts[name].format(**values)

    def confirmation(
        self, start: datetime, zone: ZoneInfo, reminder_deliverable: bool, moved: bool = False
    ) -> str:
        """The booking (or rescheduling) confirmation; it promises a reminder only when
        Instagram's 24-hour window will let one through."""
        name = "rescheduled" if moved else "confirmation"
        if not reminder_deliverable:
            name += "_save_this"
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
