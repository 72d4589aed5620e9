"""The clinic's profile in its database, the one source the bot reads: facts, topics and
visit types, read whole and changed piece by piece (the console) or at once (`profile
import`). Every change bumps the configuration's revision, which the processes watch
(`clinic/live_config.py`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from clinic.context import Clinic
from clinic.db import transaction
from clinic.models import ClinicFact, ClinicTopic, ConfigRevision, Doctor
from clinic.models import VisitType as VisitTypeRow
from clinic.profile import (
    DEFAULT_CURRENCY,
    FACTS,
    Profile,
    ProfileError,
    Topic,
    VisitType,
    profile_to_yaml,
)


def read_profile(session: Session) -> Profile:
    facts: dict[str, Any] = {
        k: v for k, v in session.execute(select(ClinicFact.key, ClinicFact.value))
    }
    values: dict[str, Any] = {key: str(facts.get(key) or "") for key in FACTS}
    values["languages"] = tuple(facts.get("languages") or ())
    values["currency"] = values["currency"] or DEFAULT_CURRENCY
    visit_types = tuple(
        _visit_type(row)
        for row in session.scalars(
            select(VisitTypeRow).where(VisitTypeRow.active == 1).order_by(VisitTypeRow.position)
        )
    )
    topics = tuple(
        Topic(tuple(row.words), row.answer)
        for row in session.scalars(select(ClinicTopic).order_by(ClinicTopic.position))
    )
    return Profile(**values, visit_types=visit_types, topics=topics)


def load_clinic_profile(clinic: Clinic) -> Profile:
    with transaction(clinic.engine) as session:
        return read_profile(session)


def export_profile(clinic: Clinic) -> str:
    return profile_to_yaml(load_clinic_profile(clinic))


def import_profile(clinic: Clinic, profile: Profile) -> None:
    """Replaces the facts and topics with the profile's, and its visit types: those it
    lists are added or updated in its order; the others are withdrawn (kept, for the
    visits already booked with them)."""
    with transaction(clinic.engine) as session:
        _write_facts(session, {key: getattr(profile, key) for key in FACTS})
        _write_topics(session, profile.topics)
        rows = {row.key: row for row in session.scalars(select(VisitTypeRow))}
        for row in rows.values():
            row.active = 0
        for position, visit in enumerate(profile.visit_types):
            _upsert_visit(session, rows.get(visit.key), visit, position)
        bump_revision(session)


def has_profile(clinic: Clinic) -> bool:
    with transaction(clinic.engine) as session:
        return session.scalar(select(ClinicFact.key).limit(1)) is not None


def save_facts(clinic: Clinic, facts: dict[str, Any]) -> None:
    """Sets the facts given (the others stay)."""
    unknown = set(facts) - set(FACTS)
    if unknown:
        raise ProfileError(f"unknown facts: {', '.join(sorted(unknown))}")
    with transaction(clinic.engine) as session:
        _write_facts(session, facts)
        bump_revision(session)


def save_topics(clinic: Clinic, topics: list[Topic]) -> None:
    with transaction(clinic.engine) as session:
        _write_topics(session, tuple(topics))
        bump_revision(session)


def all_visit_types(clinic: Clinic) -> list[tuple[VisitType, bool]]:
    """Every visit type with whether it is offered (withdrawn ones last)."""
    with transaction(clinic.engine) as session:
        rows = session.scalars(
            select(VisitTypeRow).order_by(VisitTypeRow.active.desc(), VisitTypeRow.position)
        )
        return [(_visit_type(row), bool(row.active)) for row in rows]


def save_visit_type(clinic: Clinic, visit: VisitType) -> None:
    """Adds the visit type, or updates the one with its key (offered again if withdrawn)."""
    with transaction(clinic.engine) as session:
        row = session.scalars(select(VisitTypeRow).where(VisitTypeRow.key == visit.key)).first()
        last = session.scalars(select(VisitTypeRow.position).order_by(VisitTypeRow.position.desc()))
        position = row.position if row is not None else (last.first() or 0) + 1
        _upsert_visit(session, row, visit, position)
        bump_revision(session)


def withdraw_visit_type(clinic: Clinic, key: str) -> None:
    """No longer offered: doctors stop offering it; visits booked with it keep its name."""
    with transaction(clinic.engine) as session:
        session.execute(update(VisitTypeRow).where(VisitTypeRow.key == key).values(active=0))
        for doctor in session.scalars(select(Doctor)):
            keys = [k for k in (doctor.visit_types or "").split(",") if k and k != key]
            doctor.visit_types = ",".join(keys)
        bump_revision(session)


def visit_names(session: Session) -> dict[str, str]:
    """Every visit type's name by key, withdrawn ones too (for visits already booked); ""
    (a visit booked without a type) names the default one."""
    rows = session.execute(
        select(VisitTypeRow.key, VisitTypeRow.name).order_by(
            VisitTypeRow.active.desc(), VisitTypeRow.position
        )
    ).all()
    return {"": rows[0][1] if rows else "Visit", **dict(rows)}


def bump_revision(session: Session | Connection) -> None:
    """Marks the configuration changed: every process reloads it at its next message."""
    session.execute(
        update(ConfigRevision)
        .where(ConfigRevision.id == 1)
        .values(revision=ConfigRevision.revision + 1)
    )


def current_revision(connection: Session | Connection) -> int:
    return (
        connection.execute(
            select(ConfigRevision.revision).where(ConfigRevision.id == 1)
        ).scalar_one_or_none()
        or 0
    )


def _write_facts(session: Session, facts: dict[str, Any]) -> None:
    for key, value in facts.items():
        value = list(value) if key == "languages" else str(value or "").strip()
        row = session.get(ClinicFact, key)
        if row is None:
            session.add(ClinicFact(key=key, value=value))
        else:
            row.value = value


def _write_topics(session: Session, topics: tuple[Topic, ...]) -> None:
    session.execute(delete(ClinicTopic))
    for position, topic in enumerate(topics):
        session.add(ClinicTopic(position=position, words=list(topic.words), answer=topic.answer))


def _upsert_visit(
    session: Session, row: VisitTypeRow | None, visit: VisitType, position: int
) -> None:
    if row is None:
        row = VisitTypeRow(key=visit.key)
        session.add(row)
    row.name, row.minutes, row.price = visit.name, visit.minutes, visit.price
    row.price_from, row.words = int(visit.price_from), list(visit.words)
    row.position, row.active = position, 1


def _visit_type(row: VisitTypeRow) -> VisitType:
    return VisitType(
        row.key, row.name, row.minutes, row.price, tuple(row.words or ()), bool(row.price_from)
    )
