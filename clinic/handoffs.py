"""Staff take over a conversation, and the bot keeps quiet while they do.

One row per episode (`clinic.models.Handoff`). It opens when the patient asks for a person
(the channel then passes thread control to the Instagram inbox) or when staff write to the
patient from the Instagram app. While it is open the bot is silent for that patient:
- a hand-off the bot passed holds for `timeout` from when it was asked for;
- staff writing holds for `pause` from their latest message.
It closes when control comes back to our app, or at the patient's first message after both
holds ran out; the bot then answers again (taking thread control back if it passed it).
Nothing here knows Rasa or the Graph API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import TypeVar

from sqlalchemy import bindparam, delete, or_, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clinic.audit import hash_id
from clinic.db import transaction
from clinic.models import (
    HANDOFF_CLOSED,
    HANDOFF_WAITING,
    HANDOFF_WITH_STAFF,
    Handoff,
    OwnMessage,
    Patient,
    utc_now,
)
from clinic.settings import Settings

# How far Meta's clock and ours may disagree: a hand-back seconds after the hand-off counts.
CLOCK_SKEW = timedelta(seconds=30)
T = TypeVar("T")
_SQL_OPEN_AMONG = text(
    "SELECT DISTINCT sender_id FROM handoffs WHERE state != 'closed' AND sender_id IN :senders"
).bindparams(bindparam("senders", expanding=True))


class Decision(Enum):
    """What the bot does with a patient's message."""

    ANSWER = "answer"
    STAY_SILENT = "silent"
    TAKE_BACK_AND_ANSWER = "take back"  # a passed hand-off ran out: control comes back first


@dataclass(frozen=True)
class HandoffView:
    """One line of `python -m clinic handoffs`: ids, state and times; no patient text."""

    ref: str  # the patient's short reference, as in the logs
    state: str
    opened_at: datetime
    staff_at: datetime | None
    closed_at: datetime | None


def open_handoffs(connection: Connection, instagram_ids: set[str]) -> set[str]:
    """Which of the patients have an open hand-off (one plain read: nearly always none)."""
    if not instagram_ids:
        return set()
    return set(connection.execute(_SQL_OPEN_AMONG, {"senders": sorted(instagram_ids)}).scalars())


def open_row(session: Session, instagram_id: str) -> Handoff | None:
    """The patient's open hand-off, locked for this transaction (PostgreSQL)."""
    return session.scalars(
        select(Handoff)
        .where(Handoff.sender_id == instagram_id, Handoff.state != HANDOFF_CLOSED)
        .with_for_update()
    ).first()


def once_more_on_conflict(work: Callable[[], T]) -> T:
    """Runs `work` (one transaction) again if another writer opened the patient's hand-off
    at the same moment: the second try finds it."""
    try:
        return work()
    except IntegrityError:
        return work()


def hand_off(session: Session, instagram_id: str, hashed: str, now: datetime) -> None:
    """The patient asked for a person: control goes to the inbox; the timeout starts now."""
    row = open_row(session, instagram_id)
    if row is None:
        row = Handoff(sender_id=instagram_id, sender_hash=hashed, state=HANDOFF_WAITING)
        session.add(row)
    row.control_passed = 1
    row.opened_at = now


def staff_wrote(session: Session, instagram_id: str, hashed: str, at: datetime) -> None:
    """A person at the clinic wrote to the patient from another app (or Instagram's own)."""
    row = open_row(session, instagram_id)
    if row is None:
        row = Handoff(sender_id=instagram_id, sender_hash=hashed, opened_at=at, control_passed=0)
        session.add(row)
    row.state = HANDOFF_WITH_STAFF
    row.staff_at = at if row.staff_at is None else max(row.staff_at, at)


def control_returned(session: Session, instagram_id: str, at: datetime) -> bool:
    """Thread control came back to our app at `at` (Meta's clock): a hand-off opened before
    it closes; a redelivered old notice does not close a newer one. True if one was open."""
    row = open_row(session, instagram_id)
    if row is None or row.opened_at > at + CLOCK_SKEW:
        return False
    _close(row, at, "returned")
    return True


def decide(
    session: Session, instagram_id: str, now: datetime, timeout: timedelta, pause: timedelta
) -> Decision:
    """Whether the bot answers the patient's message now; closes a hand-off that ran out
    or that staff gave back from the console."""
    row = open_row(session, instagram_id)
    if row is None:
        return Decision.ANSWER
    if holds(row, now, timeout, pause):
        return Decision.STAY_SILENT
    _close(row, now, "given back" if _given_back(row) else "timeout")
    return Decision.TAKE_BACK_AND_ANSWER if row.control_passed else Decision.ANSWER


def holds(row: Handoff, now: datetime, timeout: timedelta, pause: timedelta) -> bool:
    """An open hand-off still keeps the bot quiet at `now`: until staff give it back,
    unless they write to the patient again after that."""
    if _given_back(row):
        return False
    passed_holds = bool(row.control_passed) and now < row.opened_at + timeout
    staff_holds = row.staff_at is not None and now < row.staff_at + pause
    return passed_holds or staff_holds


def _given_back(row: Handoff) -> bool:
    return row.given_back_at is not None and (
        row.staff_at is None or row.staff_at <= row.given_back_at
    )


def give_back(session: Session, handoff_id: int, now: datetime) -> bool:
    """Staff give the conversation back to the bot from the console, as the Instagram
    inbox's hand-back does: the bot answers the patient's next message (and takes thread
    control back first when it had passed it). False when it is not open."""
    row = session.get(Handoff, handoff_id, with_for_update=True)
    if row is None or row.state == HANDOFF_CLOSED:
        return False
    row.given_back_at = now
    return True


@dataclass(frozen=True)
class OpenHandoff:
    """A conversation staff have, for the console: the patient when they are on file."""

    id: int
    ref: str
    state: str  # waiting, with_staff, or "given back" (the bot answers the next message)
    opened_at: datetime
    staff_at: datetime | None
    patient_id: int | None
    patient_name: str


def open_for_staff(
    session: Session, now: datetime, timeout: timedelta, pause: timedelta
) -> list[OpenHandoff]:
    """The hand-offs that keep the bot quiet now, or were given back and wait for the
    patient's next message; the longest waiting first."""
    rows = session.execute(
        select(Handoff, Patient.id, Patient.name)
        .outerjoin(Patient, Patient.instagram_id == Handoff.sender_id)
        .where(Handoff.state != HANDOFF_CLOSED)
        .order_by(Handoff.opened_at)
    ).all()
    found = []
    for row, patient_id, name in rows:
        given_back = _given_back(row)
        if not given_back and not holds(row, now, timeout, pause):
            continue
        state = "given back" if given_back else row.state
        found.append(
            OpenHandoff(
                row.id,
                row.sender_hash[:8],
                state,
                row.opened_at,
                row.staff_at,
                patient_id,
                name or "",
            )
        )
    return found


def listing(
    session: Session, now: datetime, timeout: timedelta, pause: timedelta, limit: int = 100
) -> list[HandoffView]:
    """The newest hand-offs first; one that ran out shows as closed."""
    rows = session.scalars(select(Handoff).order_by(Handoff.id.desc()).limit(limit))
    views = []
    for row in rows:
        state = row.state
        if state != HANDOFF_CLOSED and not holds(row, now, timeout, pause):
            state = HANDOFF_CLOSED
        views.append(
            HandoffView(row.sender_hash[:8], state, row.opened_at, row.staff_at, row.closed_at)
        )
    return views


def forget(session: Session, instagram_id: str, hashed: str) -> None:
    """Erasure: the patient's hand-offs go with them."""
    session.execute(
        delete(Handoff)
        .where(or_(Handoff.sender_id == instagram_id, Handoff.sender_hash == hashed))
        .execution_options(synchronize_session=False)
    )


class HandoffDesk:
    """The channel's view of hand-offs: each call is one transaction."""

    def __init__(self, engine: Engine, settings: Settings, clock: Callable[[], datetime] = utc_now):
        self._engine = engine
        self._key = settings.id_hash_key
        self._timeout = settings.handoff_timeout
        self._pause = settings.staff_pause
        self._clock = clock

    def decide(self, instagram_id: str) -> Decision:
        # On every message's path: one plain read when nothing is open (nearly always).
        with self._engine.connect() as connection:
            if instagram_id not in open_handoffs(connection, {instagram_id}):
                return Decision.ANSWER
        with transaction(self._engine) as session:
            return decide(session, instagram_id, self._clock(), self._timeout, self._pause)

    def record(self, notices: Iterable[StaffNotice]) -> list[StaffNotice]:
        """Staff writing and control coming back, in the order Meta listed them; those that
        counted (an echo of a message the bot sent does not)."""
        notices = list(notices)
        return once_more_on_conflict(lambda: self._record(notices))

    def ran_out(self, instagram_ids: Iterable[str]) -> set[str]:
        """Those of the patients whose open hand-off no longer keeps the bot quiet (read
        only: the hand-off closes when their message's turn comes)."""
        ids = list(instagram_ids)
        if not ids:
            return set()
        now = self._clock()
        with transaction(self._engine) as session:
            rows = session.scalars(
                select(Handoff).where(Handoff.sender_id.in_(ids), Handoff.state != HANDOFF_CLOSED)
            )
            return {r.sender_id for r in rows if not holds(r, now, self._timeout, self._pause)}

    def _record(self, notices: list[StaffNotice]) -> list[StaffNotice]:
        now, counted = self._clock(), []
        with transaction(self._engine) as session:
            for notice in notices:
                at = min(notice.at or now, now)
                if notice.returned:
                    control_returned(session, notice.instagram_id, at)
                elif notice.mid and session.get(OwnMessage, notice.mid) is not None:
                    continue
                else:
                    hashed = hash_id(notice.instagram_id, self._key)
                    staff_wrote(session, notice.instagram_id, hashed, at)
                counted.append(notice)
        return counted


@dataclass(frozen=True)
class StaffNotice:
    """Staff wrote to the patient (`returned=False`) or handed the conversation back."""

    instagram_id: str
    at: datetime | None  # None: unknown, now
    returned: bool = False
    mid: str | None = None  # staff's message: its id


def _close(row: Handoff, at: datetime, reason: str) -> None:
    row.state = HANDOFF_CLOSED
    row.closed_at = at
    row.close_reason = reason
    row.sender_id = None
