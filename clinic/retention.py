"""Retention: conversations idle longer than CONVERSATION_RETENTION_DAYS are deleted, with
the channel's settled delivery records of that age.

Rasa's SQL tracker store keeps every event of a conversation (its `events` table, which may
live in another database: TRACKER_STORE_URL); the channel keeps message ids and hashed
senders for dedupe. Neither is needed once a conversation has been quiet that long.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, or_, text
from sqlalchemy.engine import Engine

from clinic.context import Clinic
from clinic.db import transaction
from clinic.models import Handoff, InboxMessage, OutboxMessage, OwnMessage, TextThread

# Rasa's SQLTrackerStore: one row per event, `timestamp` in seconds since the epoch.
_IDLE_CONVERSATIONS = text(
    "DELETE FROM events WHERE sender_id IN "
    "(SELECT sender_id FROM events GROUP BY sender_id HAVING max(timestamp) < :cutoff)"
)


_ONE_CONVERSATION = text("DELETE FROM events WHERE sender_id = :sender")


@dataclass(frozen=True)
class Purged:
    events: int
    messages: int
    replies: int
    handoffs: int = 0


def purge(clinic: Clinic, tracker_engine: Engine | None) -> Purged:
    """Deletes what is older than the retention period; `tracker_engine` is the database of
    Rasa's SQL tracker store (None when conversations are kept in memory)."""
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
    return Purged(events, messages, replies, handoffs)


def forget_conversation(tracker_engine: Engine, sender_id: str) -> int:
    """Deletes one conversation from Rasa's SQL tracker store (an erasure); its events."""
    with tracker_engine.begin() as connection:
        return connection.execute(_ONE_CONVERSATION, {"sender": sender_id}).rowcount
