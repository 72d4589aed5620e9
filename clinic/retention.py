"""Retention: conversations idle longer than CONVERSATION_RETENTION_DAYS are deleted, with
the channel's settled delivery records of that age and Rasa's lock keys left that long; an
erasure a crash left unfinished (clinic/erasure_markers.py) is finished.

Rasa's SQL tracker store keeps every event of a conversation (its `events` table, which may
live in another database: TRACKER_STORE_URL); the channel keeps message ids and hashed
senders for dedupe. Neither is needed once a conversation has been quiet that long.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from sqlalchemy import delete, or_, text
from sqlalchemy.engine import Engine

from clinic.audit import hash_id
from clinic.context import Clinic
from clinic.db import transaction, truncate_wal
from clinic.erasure_markers import finish, marked
from clinic.models import Handoff, InboxMessage, OutboxMessage, OwnMessage, TextThread

# Rasa's SQLTrackerStore: one row per event, `timestamp` in seconds since the epoch.
_IDLE_CONVERSATIONS = text(
    "DELETE FROM events WHERE sender_id IN "
    "(SELECT sender_id FROM events GROUP BY sender_id HAVING max(timestamp) < :cutoff)"
)


_ONE_CONVERSATION = text("DELETE FROM events WHERE sender_id = :sender")
_SENDERS = text("SELECT DISTINCT sender_id FROM events")
_SENDERS_WAITING = text(
    "SELECT sender_id FROM inbox_messages WHERE status = 'pending' "
    "UNION SELECT recipient_id FROM outbox_messages WHERE status = 'pending'"
)


class LockKeys(Protocol):
    """Rasa's lock keys (connectors/lock_keys.py), when they live in Redis."""

    def senders(self) -> set[str]: ...

    def forget(self, sender_id: str) -> int: ...

    def remove_stale(self, cutoff: float) -> int: ...


@dataclass(frozen=True)
class Purged:
    events: int
    messages: int
    replies: int
    handoffs: int = 0
    erasures: int = 0  # unfinished erasures finished
    locks: int = 0  # lock keys removed


def purge(clinic: Clinic, tracker_engine: Engine | None, locks: LockKeys | None = None) -> Purged:
    """Finishes the erasures a crash left, then deletes what is older than the retention
    period; `tracker_engine` is the database of Rasa's SQL tracker store (None when
    conversations are kept in memory), `locks` Rasa's lock keys (None: in memory)."""
    erasures = finish_erasures(clinic, tracker_engine, locks)
    cutoff = clinic.now() - timedelta(days=clinic.settings.retention_days)
    with transaction(clinic.engine) as session:
        messages = session.execute(
            delete(InboxMessage).where(
                InboxMessage.status != "pending", InboxMessage.received_at < cutoff
            )
        ).rowcount
        replies = session.execute(
            delete(OutboxMessage).where(
                OutboxMessage.status != "pending", OutboxMessage.created_at < cutoff
            )
        ).rowcount
        handoffs = session.execute(
            delete(Handoff).where(
                Handoff.opened_at < cutoff,
                or_(Handoff.staff_at.is_(None), Handoff.staff_at < cutoff),
            )
        ).rowcount
        session.execute(delete(OwnMessage).where(OwnMessage.sent_at < cutoff))
        session.execute(delete(TextThread).where(TextThread.asked_at < cutoff))
    events = 0
    if tracker_engine is not None:
        with tracker_engine.begin() as connection:
            events = connection.execute(
                _IDLE_CONVERSATIONS, {"cutoff": cutoff.timestamp()}
            ).rowcount
    stale_locks = locks.remove_stale(cutoff.timestamp()) if locks is not None else 0
    return Purged(events, messages, replies, handoffs, erasures, stale_locks)


def finish_erasures(clinic: Clinic, tracker_engine: Engine | None, locks: LockKeys | None) -> int:
    """Every erasure still marked: the sender's conversation and lock keys go (found by
    their keyed hash: the marker keeps no id), and the marker with them once no message of
    the sender is on its way. How many were finished."""
    with transaction(clinic.engine) as session:
        hashes = marked(session)
        if not hashes:
            return 0
        candidates = set(session.execute(_SENDERS_WAITING).scalars())
    if tracker_engine is not None:
        with tracker_engine.connect() as connection:
            candidates |= set(connection.execute(_SENDERS).scalars())
    if locks is not None:
        candidates |= locks.senders()
    senders = defaultdict(list)
    for sender_id in candidates:
        senders[hash_id(sender_id, clinic.settings.id_hash_key)].append(sender_id)
    finished = 0
    for hashed in hashes:
        for sender_id in senders[hashed]:
            if tracker_engine is not None:
                forget_conversation(tracker_engine, sender_id)
            if locks is not None:
                locks.forget(sender_id)
        with transaction(clinic.engine) as session:
            finished += finish(session, hashed, senders[hashed])
    return finished


def forget_conversation(tracker_engine: Engine, sender_id: str) -> int:
    """Deletes one conversation from Rasa's SQL tracker store (an erasure); its events."""
    with tracker_engine.begin() as connection:
        deleted = connection.execute(_ONE_CONVERSATION, {"sender": sender_id}).rowcount
    truncate_wal(tracker_engine)
    return deleted
