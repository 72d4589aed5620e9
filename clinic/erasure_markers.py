"""Erasure markers: a "delete my data" is recorded (a keyed hash of the sender, and when)
in the transaction that erases the sender's rows, and kept until nothing of the sender is
left: their conversation in Rasa's tracker store and Rasa's lock keys (the rasa server
erases them when it would save the conversation), and the messages still on their way
(the answer to the request itself). Whoever meets a marker finishes the erasure: the rasa
server on every save of that conversation (a retried turn included), the outbox when it
settles a message to the sender, and the retention job (`purge`) for one a crash left.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from clinic.models import UTCDateTime

# What a settled inbox row keeps of an erased sender: its mid still recognises a
# redelivery by Meta, so the erased conversation is never started again.
ERASED_SENDER = "erased"

_SQL_MARK = text(
    "INSERT INTO erasure_markers (sender_hash, requested_at) VALUES (:hash, :now) "
    "ON CONFLICT (sender_hash) DO NOTHING"
).bindparams(bindparam("now", type_=UTCDateTime()))
_SQL_MARKED = text("SELECT 1 FROM erasure_markers WHERE sender_hash = :hash")
_SQL_ALL = text("SELECT sender_hash FROM erasure_markers ORDER BY requested_at")
_SQL_UNMARK = text("DELETE FROM erasure_markers WHERE sender_hash = :hash")
_SQL_TRACES = tuple(
    statement.bindparams(bindparam("ids", expanding=True))
    for statement in (
        text("DELETE FROM outbox_messages WHERE status != 'pending' AND recipient_id IN :ids"),
        text(
            "UPDATE inbox_messages SET sender_id = :erased "
            "WHERE status != 'pending' AND sender_id IN :ids"
        ),
        text("UPDATE audit_events SET recipient_hash = NULL WHERE recipient_hash IN :ids"),
    )
)
_SQL_PENDING = text(
    "SELECT 1 FROM inbox_messages WHERE status = 'pending' AND sender_id IN :ids "
    "UNION ALL SELECT 1 FROM outbox_messages WHERE status = 'pending' AND recipient_id IN :ids"
).bindparams(bindparam("ids", expanding=True))


def mark(session: Session | Connection, hashed: str, now: datetime) -> bool:
    """Records the request in the caller's transaction; False when it was recorded before
    (a retried request, or one whose erasure is not finished yet)."""
    return session.execute(_SQL_MARK, {"hash": hashed, "now": now}).rowcount == 1


def is_marked(connection: Session | Connection, hashed: str) -> bool:
    return connection.execute(_SQL_MARKED, {"hash": hashed}).first() is not None


def marked(connection: Session | Connection) -> list[str]:
    """The hashes of every erasure not finished, oldest first."""
    return list(connection.execute(_SQL_ALL).scalars())


def clear_traces(connection: Session | Connection, hashed: str, raw_ids: Iterable[str]) -> None:
    """The sender's settled messages go (sent and failed replies, by Instagram or text),
    the messages they wrote keep only their mid, and audit rows lose the sender's hash."""
    values = {"ids": sorted({*raw_ids, hashed}), "erased": ERASED_SENDER}
    for statement in _SQL_TRACES:
        connection.execute(statement, values)


def finish(connection: Session | Connection, hashed: str, raw_ids: Iterable[str]) -> bool:
    """Clears what the erasure left since it was recorded (`clear_traces`); the marker
    goes when no message of the sender (`raw_ids`: their Instagram id) waits in the inbox
    or the outbox any more. True when it went: the erasure is complete. Call it only once
    the conversation and lock keys are gone."""
    ids = sorted(set(raw_ids))
    clear_traces(connection, hashed, ids)
    if ids and connection.execute(_SQL_PENDING, {"ids": ids}).first() is not None:
        return False
    return connection.execute(_SQL_UNMARK, {"hash": hashed}).rowcount == 1
