"""Each doctor's secret calendar link: a random token shown once, stored only as its SHA-256.

A doctor has at most one link. Issuing a new one replaces the old, which stops working at
once; a doctor without a link has no feed. Issuing is an audit row of ids
(`calendar_link_issued`, with `revoked=1` when an old link was replaced); the token itself
is never stored, logged nor audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clinic import audit
from clinic.context import Clinic
from clinic.db import transaction
from clinic.errors import UnknownDoctorError
from clinic.models import Doctor, FeedToken
from clinic.secret_links import MAX_TOKEN_LENGTH, new_token, token_hash
from clinic.settings import Settings


@dataclass(frozen=True)
class FeedLink:
    """Whether a doctor has a link, and since when (the link itself is not kept)."""

    doctor_id: int
    doctor_name: str
    active: bool
    issued_at: datetime | None


def feed_url(settings: Settings, doctor_id: int, token: str) -> str:
    """The link a doctor pastes into their calendar app (served by make serve)."""
    return f"{settings.public_url.rstrip('/')}/calendar/{doctor_id}.ics?token={token}"


def rotate_feed(clinic: Clinic, doctor_id: int, staff_id: int | None = None) -> str:
    """A new link for the doctor, replacing (revoking) any old one; the new token, to be
    shown once. `UnknownDoctorError` when there is no such doctor."""
    token, stored = new_token()
    with transaction(clinic.engine) as session:
        current = _locked_link(session, doctor_id)
        _store(session, clinic, doctor_id, current, stored, staff_id)
    return token


def first_feed(clinic: Clinic, doctor_id: int, staff_id: int | None = None) -> str | None:
    """A link for a doctor who has none; None (nothing changed) when they already have one."""
    token, stored = new_token()
    try:
        with transaction(clinic.engine) as session:
            if _locked_link(session, doctor_id) is not None:
                return None
            _store(session, clinic, doctor_id, None, stored, staff_id)
    except IntegrityError:  # another process issued theirs in the meantime
        return None
    return token


def feed_links(clinic: Clinic) -> list[FeedLink]:
    """Every doctor, lowest id first, with when their link was issued (None: no link)."""
    with transaction(clinic.engine) as session:
        rows = session.execute(
            select(Doctor.id, Doctor.name, Doctor.active, FeedToken.issued_at)
            .outerjoin(FeedToken, FeedToken.doctor_id == Doctor.id)
            .order_by(Doctor.id)
        ).all()
    return [FeedLink(id_, name, bool(active), issued) for id_, name, active, issued in rows]


def link_issued_at(clinic: Clinic, doctor_id: int) -> datetime | None:
    """When the doctor's current link was made; None when they have none."""
    with transaction(clinic.engine) as session:
        return session.scalar(select(FeedToken.issued_at).where(FeedToken.doctor_id == doctor_id))


def doctor_for_token(clinic: Clinic, token: str) -> int | None:
    """The doctor whose current link holds `token`; None for any other token.

    The lookup is by the token's SHA-256 (a unique index): how long it takes can only tell
    about the hashes of guessed tokens, never about a stored one, so no comparison of a
    secret runs in variable time.
    """
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    with transaction(clinic.engine) as session:
        return session.scalar(
            select(FeedToken.doctor_id).where(FeedToken.token_hash == token_hash(token))
        )


def _locked_link(session: Session, doctor_id: int) -> FeedToken | None:
    """The doctor's link row, after locking the doctor's row (on PostgreSQL) so that two
    issuings for one doctor run in turn."""
    doctor = session.scalar(select(Doctor.id).where(Doctor.id == doctor_id).with_for_update())
    if doctor is None:
        raise UnknownDoctorError(f"no doctor with id {doctor_id}")
    return session.get(FeedToken, doctor_id)


def _store(
    session: Session,
    clinic: Clinic,
    doctor_id: int,
    current: FeedToken | None,
    stored: str,
    staff_id: int | None,
) -> None:
    if current is None:
        session.add(FeedToken(doctor_id=doctor_id, token_hash=stored, issued_at=clinic.now()))
    else:
        current.token_hash, current.issued_at = stored, clinic.now()
    audit.record(
        session,
        audit.CALENDAR_LINK_ISSUED,
        doctor_id=doctor_id,
        staff_id=staff_id,
        revoked=int(current is not None),
    )
