"""The channel's durable inbox (docs/delivery.md): what Meta delivered, committed before the
200, claimed by the workers of every replica per patient, oldest first, under a lease
(clinic/queues.py). The outbox (clinic/outbox.py) holds what the bot sends. Nothing here
knows Rasa or the Graph API.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import TextClause

from clinic.handoffs import open_handoffs
from clinic.models import INBOX_DONE, INBOX_FAILED, InboxMessage
from clinic.outbox import Outbox, OutboxItem
from clinic.patients import note_messages_in
from clinic.queues import TIME, LeasedQueue, one_writer_at_a_time, settle_message

# The outbox is imported from here too: `from clinic.delivery import Inbox, Outbox`.
__all__ = ["Accepted", "Inbox", "InboxFull", "InboxItem", "NewMessage", "Outbox", "OutboxItem"]

_SQL_SENDER_LOCKS = text(
    "SELECT count(pg_advisory_xact_lock(hashtextextended(sender, 0))) "
    "FROM unnest(CAST(:senders AS text[])) AS sender"
)
# What the intake reads before storing, in one statement: the line of pending messages (all
# of them, and those due that no worker holds: while any wait, a new message joins the line
# instead of jumping it, first come first served), which of the messages are stored already,
# and which of their patients have a message waiting.
_SQL_BEFORE_ACCEPT = text(
    "SELECT 'line', NULL, count(*), coalesce(sum(CASE WHEN lease_until IS NULL AND "
    "(not_before IS NULL OR not_before <= :now) THEN 1 ELSE 0 END), 0) "
    "FROM inbox_messages WHERE status = 'pending' "
    "UNION ALL SELECT 'stored', mid, 0, 0 FROM inbox_messages WHERE mid IN :mids "
    "UNION ALL SELECT DISTINCT 'waiting', sender_id, 0, 0 FROM inbox_messages "
    "WHERE status = 'pending' AND sender_id IN :senders"
).bindparams(
    bindparam("now", type_=TIME),
    bindparam("mids", expanding=True),
    bindparam("senders", expanding=True),
)
# Rows per statement of the intake (SQLite before 3.32 takes 999 parameters in one).
ROWS_PER_STATEMENT = 100
_INSERT_MESSAGE_COLUMNS = (
    "mid",
    "sender_id",
    "sent_at_ms",
    "kind",
    "text",
    "attempts",
    "lease_owner",
    "lease_until",
)


class InboxFull(Exception):
    """More messages wait than the inbox may hold: the webhook answers 503."""


@dataclass(frozen=True)
class NewMessage:
    mid: str
    sender_id: str
    sent_at_ms: int
    kind: str
    text: str


@dataclass(frozen=True)
class InboxItem:
    id: int
    mid: str
    sender_id: str
    sent_at_ms: int
    kind: str
    text: str
    attempts: int  # this claim included: above 1, an earlier turn may have run
    # Read with the claim: False spares the turn that read (None: not read).
    handoff_open: bool | None = None


@dataclass(frozen=True)
class Accepted:
    new: list[str]  # the mids that were not stored before
    claimed: list[InboxItem]  # those leased to the caller, to run now


class Inbox(LeasedQueue):
    model = InboxMessage
    key = "sender_id"
    order = ("sent_at_ms", "id")

    def __init__(self, *args: Any, max_pending: int = 1000, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.max_pending = max_pending

    def accept(self, messages: list[NewMessage], claim_up_to: int = 0) -> Accepted:
        """Commits the new messages (ids already stored are duplicates) and notes when each
        patient last wrote; `InboxFull` past the bound. Up to `claim_up_to` of the new ones
        whose patient has nothing else waiting are claimed for the caller in the same
        transaction, so the turn can start at once, unless older messages wait for a worker:
        then they go first. On the webhook's path: each step is one statement for all the
        messages of a delivery (up to `ROWS_PER_STATEMENT`)."""
        by_mid = {m.mid: m for m in sorted(messages, key=lambda m: m.sent_at_ms)}
        accepted = Accepted([], [])
        if not by_mid:
            return accepted
        ordered = list(by_mid.values())
        with one_writer_at_a_time(self.engine), self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # One patient's deliveries are stored one after the other, so each sees what
                # the one before stored (SQLite has a single writer anyway); sorted: no deadlock.
                senders = sorted({m.sender_id for m in ordered})
                connection.execute(_SQL_SENDER_LOCKS, {"senders": senders})
            for start in range(0, len(ordered), ROWS_PER_STATEMENT):
                part = ordered[start : start + ROWS_PER_STATEMENT]
                room = claim_up_to - len(accepted.claimed)
                new, claimed = self._accept_in(connection, part, room)
                accepted.new.extend(new)
                accepted.claimed.extend(claimed)
        return accepted

    def _accept_in(
        self, connection: Connection, messages: list[NewMessage], claim_up_to: int
    ) -> tuple[list[str], list[InboxItem]]:
        """`accept` of messages in the order written, in the caller's transaction."""
        now = self.clock()
        senders = sorted({m.sender_id for m in messages})
        rows = connection.execute(
            _SQL_BEFORE_ACCEPT, {"now": now, "mids": [m.mid for m in messages], "senders": senders}
        ).all()
        stored = {value for kind, value, _, _ in rows if kind == "stored"}
        fresh = [m for m in messages if m.mid not in stored]
        if not fresh:
            return [], []
        waiting, unclaimed = next((n, u) for kind, _, n, u in rows if kind == "line")
        if waiting + len(fresh) > self.max_pending:
            raise InboxFull(f"more than {self.max_pending} messages wait")
        busy = {value for kind, value, _, _ in rows if kind == "waiting"}
        claimed: set[str] = set()
        for m in fresh:
            # First come, first served: once one waits unclaimed, the later ones wait too.
            if len(claimed) < claim_up_to and m.sender_id not in busy and not unclaimed:
                claimed.add(m.mid)
            else:
                unclaimed += 1
            busy.add(m.sender_id)
        ids = dict(connection.execute(*_insert_messages(fresh, claimed, self, now)).all())
        stored_now = [m for m in fresh if m.mid in ids]  # not those another writer stored first
        note_messages_in(connection, {m.sender_id: _moment(m.sent_at_ms, now) for m in stored_now})
        handoffs = open_handoffs(connection, {m.sender_id for m in stored_now if m.mid in claimed})
        return [m.mid for m in stored_now], [
            InboxItem(
                ids[m.mid],
                m.mid,
                m.sender_id,
                m.sent_at_ms,
                m.kind,
                m.text,
                1,
                m.sender_id in handoffs,
            )
            for m in stored_now
            if m.mid in claimed
        ]

    def claim(self, limit: int, ids: Iterable[int] | None = None) -> list[InboxItem]:
        with self._transaction() as session:
            rows = self._claim(session, limit, ids)
            handoffs = open_handoffs(session.connection(), {r.sender_id for r in rows})
            return [
                InboxItem(
                    r.id,
                    r.mid,
                    r.sender_id,
                    r.sent_at_ms,
                    r.kind,
                    r.text or "",
                    r.attempts,
                    r.sender_id in handoffs,
                )
                for r in rows
            ]

    def ids_of(self, mids: list[str]) -> list[int]:
        with self._transaction() as session:
            return list(session.scalars(select(InboxMessage.id).where(InboxMessage.mid.in_(mids))))

    def finish(self, item: InboxItem) -> bool:
        """Handled: the text is erased and the sender kept only as a keyed hash; the row
        stays to recognise a redelivery until the retention job deletes it. True when the
        patient's next message waits (so a claim is worth its cost)."""
        return self._settle(item, INBOX_DONE)

    def give_up(self, item: InboxItem) -> bool:
        """Its turns kept failing: kept as failed, and the patient's next messages go on."""
        return self._settle(item, INBOX_FAILED)

    def _settle(self, item: InboxItem, status: str) -> bool:
        with one_writer_at_a_time(self.engine), self.engine.begin() as connection:
            return settle_message(
                connection, item.id, item.sender_id, status, self.hash_key, self.clock()
            )


def _insert_messages(
    messages: list[NewMessage], claimed: set[str], inbox: Inbox, now: datetime
) -> tuple[TextClause, dict[str, Any]]:
    """One INSERT for all `messages` (those in `claimed` leased to `inbox`'s owner) and its
    parameters; it returns (mid, id) of each row it stored."""
    params: dict[str, Any] = {"now": now}
    for i, m in enumerate(messages):
        claim = m.mid in claimed
        values = (
            m.mid,
            m.sender_id,
            m.sent_at_ms,
            m.kind,
            m.text,
            1 if claim else 0,
            inbox.owner if claim else None,
            now + inbox.lease if claim else None,
        )
        params.update(
            {
                f"{column}_{i}": value
                for column, value in zip(_INSERT_MESSAGE_COLUMNS, values, strict=True)
            }
        )
    return _insert_statement(len(messages)), params


@lru_cache(maxsize=64)
def _insert_statement(count: int) -> TextClause:
    rows = ", ".join(
        "("
        + ", ".join(f":{column}_{i}" for column in _INSERT_MESSAGE_COLUMNS)
        + ", 'pending', :now)"
        for i in range(count)
    )
    return text(
        f"INSERT INTO inbox_messages ({', '.join(_INSERT_MESSAGE_COLUMNS)}, status, received_at) "  # noqa: S608 - placeholders
        f"VALUES {rows} ON CONFLICT (mid) DO NOTHING RETURNING mid, id"
    ).bindparams(
        bindparam("now", type_=TIME),
        *(bindparam(f"lease_until_{i}", type_=TIME) for i in range(count)),
    )


def _moment(timestamp_ms: int, fallback: datetime) -> datetime:
    """Meta's timestamp, unless it is missing or later than now."""
    if timestamp_ms <= 0:
        return fallback
    return min(datetime.fromtimestamp(timestamp_ms / 1000, fallback.tzinfo), fallback)
