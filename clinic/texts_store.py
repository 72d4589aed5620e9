"""The bot's wording: every patient text has a default (clinic/templates.yml, packaged);
the clinic's own wording of any of them is kept in the database. A text is checked before
it is kept: it must use the placeholders its default uses, and no other."""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import cache

import yaml
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from clinic import audit
from clinic.context import Clinic
from clinic.db import transaction
from clinic.models import TextOverride
from clinic.profile_store import bump_revision
from clinic.settings import DEFAULT_TEMPLATES_PATH
from clinic.templates import TemplateError

# Placeholders any text may use (filled from the settings).
EVERYWHERE = frozenset({"retention_days"})
MAX_LENGTH = 1000  # Instagram's limit for one message, in bytes; a longer text is split
# What a preview fills the placeholders with.
SAMPLES = {
    "when": "Feb 5, 2026 at 2:00 PM",
    "day": "Thu, Feb 5",
    "next_day": "Fri, Feb 6",
    "last_day": "Sat, Apr 4",
    "time": "2:30 PM",
    "visit": "Consultation",
    "visits": "Consultation, Follow-up and Procedure",
    "doctor": "Dr. Smith",
    "doctors": "Dr. Demo and Dr. Smith",
    "visit_with_doctor": ": Consultation with Dr. Smith",
    "wish": "morning",
    "first_name": "Maria",
    "count": "4",
    "example": "2:30pm",
    "hours": "Mon–Fri 9:00 AM–5:00 PM",
    "closures": "Dec 24–26",
    "address": "100 Example Street, Springfield",
    "map_link": "https://maps.example.com/…",
    "prices": "Consultation $80, Follow-up $50",
    "price": "$80",
    "languages": "English and Spanish",
    "phone": "+1 202 555 0100",
    "retention_days": "30",
    "clinic": "Demo Clinic",
    "handle": "democlinic",
}


@dataclass(frozen=True)
class TextView:
    name: str
    default: str
    text: str  # what the bot says now
    changed: bool  # the clinic's own wording


@cache
def default_texts() -> dict[str, str]:
    texts = yaml.safe_load(DEFAULT_TEMPLATES_PATH.read_text(encoding="utf-8"))
    return {str(name): str(text) for name, text in texts.items()}


def read_texts(session: Session) -> dict[str, str]:
    """Every text as the bot says it now: the defaults, with the clinic's own wording."""
    texts = dict(default_texts())
    for name, text in session.execute(select(TextOverride.name, TextOverride.text)):
        if name in texts:
            texts[name] = text
    return texts


def text_views(clinic: Clinic) -> list[TextView]:
    with transaction(clinic.engine) as session:
        current = read_texts(session)
    return [
        TextView(name, default, current[name], current[name] != default)
        for name, default in default_texts().items()
    ]


def check_text(name: str, text: str) -> str:
    """The text, trimmed, if the bot can use it in place of `name`'s default; else
    `TemplateError` saying why."""
    default = default_texts().get(name)
    if default is None:
        raise TemplateError(f"there is no text called {name!r}")
    text = text.strip()
    if not text:
        raise TemplateError("the text is empty")
    if len(text.encode()) > MAX_LENGTH:
        raise TemplateError(f"the text is longer than {MAX_LENGTH} bytes")
    used = placeholders(text)
    expected = placeholders(default)
    unknown = sorted(used - expected - EVERYWHERE)
    if unknown:
        names = ", ".join("{" + u + "}" for u in unknown)
        known = ", ".join("{" + e + "}" for e in sorted(expected)) or "none"
        raise TemplateError(f"it names {names}, which this text can't fill (it has: {known})")
    missing = sorted(expected - used)
    if missing:
        names = ", ".join("{" + m + "}" for m in missing)
        raise TemplateError(f"it must keep {names}, or patients lose that part")
    return text


def placeholders(text: str) -> set[str]:
    """The names between braces; `TemplateError` for a brace that is not closed."""
    try:
        return {f for _, f, spec, conv in string.Formatter().parse(text) if f is not None}
    except ValueError as error:
        raise TemplateError(
            "a { or } is not closed: write {{ or }} for a brace that should show"
        ) from error


def preview(name: str, text: str) -> str:
    """The text with sample values, as a patient would read it."""
    checked = check_text(name, text)
    return checked.format(**{p: SAMPLES.get(p, p) for p in placeholders(checked)})


def save_text(clinic: Clinic, staff_id: int | None, name: str, text: str) -> None:
    """Keeps the clinic's wording (checked first); the default's own words drop it."""
    checked = check_text(name, text)
    with transaction(clinic.engine) as session:
        session.execute(delete(TextOverride).where(TextOverride.name == name))
        if checked != default_texts()[name]:
            session.add(TextOverride(name=name, text=checked, updated_at=clinic.now()))
        bump_revision(session)
        audit.record(session, audit.TEXT_CHANGED, staff_id=staff_id, text=name)


def reset_text(clinic: Clinic, staff_id: int | None, name: str) -> None:
    with transaction(clinic.engine) as session:
        session.execute(delete(TextOverride).where(TextOverride.name == name))
        bump_revision(session)
        audit.record(session, audit.TEXT_CHANGED, staff_id=staff_id, text=name, reset=1)
