"""Every text patients read, loaded from one editable file, and the one date formatter
(times are shown in the clinic's time zone)."""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from clinic.settings import DEFAULT_TEMPLATES_PATH, Settings

# English names, so the output never depends on the process locale.
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# The most quick replies one message offers, and their longest title (Instagram's limits).
MAX_QUICK_REPLIES = 13
QUICK_REPLY_TITLE_LIMIT = 20


class TemplateError(ValueError):
    """The templates file misses a text or uses a placeholder the text can't fill."""


def format_time(moment: datetime, zone: ZoneInfo) -> str:
    """'2:00 PM'"""
    return format_clock(moment.astimezone(zone).time())


def format_clock(moment: time) -> str:
    """A wall-clock time: '2:00 PM'"""
    hour = moment.hour % 12 or 12
    return f"{hour}:{moment.minute:02d} {'AM' if moment.hour < 12 else 'PM'}"


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
    def __init__(self, texts: dict[str, str], facts: dict[str, str] | None = None):
        self._texts = texts
        self._facts = facts or {}  # placeholders every text may use: {retention_days}

    def render(self, name: str, **values: str) -> str:
        return self._texts[name].format(**self._facts, **values)

    def confirmation(
        self,
        start: datetime,
        zone: ZoneInfo,
        reminder: str | None,
        moved: bool = False,
        visit: str = "",
        doctor: str = "",
    ) -> str:
        """The booking (or rescheduling) confirmation, naming the visit and the doctor when
        given (a clinic with a choice of them), and where the reminder will come from:
        `reminder` is "instagram", "sms", or None (the patient is asked to save this)."""
        name = "rescheduled" if moved else "confirmation"
        name += {"instagram": "", "sms": "_by_text"}.get(reminder or "", "_save_this")
        named = self.visit_with_doctor(visit, doctor)
        return self.render(name, when=format_when(start, zone), visit_with_doctor=named)

    def visit_with_doctor(self, visit: str, doctor: str) -> str:
        """ ": Procedure with Dr. Smith" after a date, or nothing when no doctor is named."""
        return self.render("visit_with_doctor", visit=visit, doctor=doctor) if doctor else ""


def load_templates(
    path: Path = DEFAULT_TEMPLATES_PATH, facts: dict[str, str] | None = None
) -> Templates:
    """The texts of a templates file (the packaged defaults unless told otherwise)."""
    texts = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(texts, dict):
        raise TemplateError(f"{path} must map template names to texts")
    return Templates(texts, facts)


def templates_for(settings: Settings) -> Templates:
    """The packaged texts, with the facts of the settings filled in: what the bot says
    before it has read the clinic's own wording from its database (clinic/live_config.py)."""
    return load_templates(DEFAULT_TEMPLATES_PATH, {"retention_days": str(settings.retention_days)})
