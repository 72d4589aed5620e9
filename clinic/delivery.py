"""The channel's durable inbox and outbox (docs/delivery.md): what Meta delivered, committed
before the 200; what the bot answers, committed before it is sent.

Both are queues in the clinic's database that workers of every replica claim from: per
patient, oldest first, one item at a time, under a lease that a dead worker's successor
takes over once it runs out. Nothing here knows Rasa or the Graph API.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache, lru_cache
from typing import Any

from sqlalchemy import (
    JSON,
    Table,
    and_,
    bindparam,
    delete,
    exists,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import TextClause

from clinic.audit import hash_id
from clinic.db import transaction
from clinic.handoffs import open_handoffs
from clinic.models import (
    INBOX_DONE,
    INBOX_FAILED,
    OUTBOX_FAILED,
    OUTBOX_PENDING,
    InboxMessage,
    OutboxMessage,
    UTCDateTime,
    utc_now,
)
from clinic.patients import note_messages_in

DEFAULT_LEASE = timedelta(seconds=15)

# The statements on the path of every message and reply, written out: a fraction of the
# cost of building them per call (bench/webhook.py).
_TIME = UTCDateTime()
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
    bindparam("now", type_=_TIME),
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
_SQL_SETTLE_MESSAGE = text(
    "UPDATE inbox_messages SET status = :status, text = NULL, sender_id = :sender, "
    "lease_until = NULL, done_at = :now WHERE id = :id"
).bindparams(bindparam("now", type_=_TIME))
_SQL_SENDER_WAITS = text(
    "SELECT 1 FROM inbox_messages WHERE sender_id = :sender AND status = 'pending' LIMIT 1"
)
_SQL_REPLIES_PENDING = text(
    "SELECT count(*) FROM outbox_messages WHERE recipient_id = :recipient AND status = 'pending'"
)
_SQL_INSERT_REPLY = text(
    "INSERT INTO outbox_messages (recipient_id, inbox_mid, seq, body, status, attempts, "
    "lease_owner, lease_until, created_at) VALUES (:recipient, :mid, :seq, :body, 'pending', "
    ":attempts, :owner, :lease_until, :now) ON CONFLICT (inbox_mid, seq) DO NOTHING RETURNING id"
).bindparams(
    bindparam("body", type_=JSON(none_as_null=True)),
    bindparam("lease_until", type_=_TIME),
    bindparam("now", type_=_TIME),
)
_SQL_REPLY_SENT = text(
    "UPDATE outbox_messages SET status = 'sent', body = NULL, recipient_id = :recipient, "
    "lease_until = NULL, sent_at = :now WHERE id = :id"
).bindparams(bindparam("now", type_=_TIME))

_SQL_OWN_MESSAGE = text(
    "INSERT INTO own_messages (mid, sent_at) VALUES (:mid, :now) ON CONFLICT (mid) DO NOTHING"
).bindparams(bindparam("now", type_=_TIME))


def remember_own_messages(engine: Engine, mids: Iterable[str | None], now: datetime) -> None:
    """Messages the bot sent outside the outbox (reminders): their echoes are its own."""
    rows = [{"mid": mid, "now": now} for mid in mids if mid]
    if rows:
        with _one_writer_at_a_time(engine), engine.begin() as connection:
            connection.execute(_SQL_OWN_MESSAGE, rows)


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


@dataclass(frozen=True)
class OutboxItem:
    id: int
    recipient_id: str
    body: dict[str, Any]
    attempts: int
    created_at: datetime


class LeasedQueue:
    """Claims from a table of pending rows, one per `key` at a time, oldest first."""

    model: Any
    key: str
    order: tuple[str, ...]

    def __init__(
        self,
        engine: Engine,
        owner: str,
        lease: timedelta,
        hash_key: str,
        clock: Callable = utc_now,
    ):
        self.engine = engine
        self.owner = owner
        self.lease = lease
        self.hash_key = hash_key  # settled rows keep only keyed hashes of patients' ids
        self.clock = clock

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        with _one_writer_at_a_time(self.engine), transaction(self.engine) as session:
            yield session

    def _claim(
        self,
        session: Session,
        limit: int,
        ids: Iterable[int] | None = None,
        key_value: str | None = None,
    ) -> list:
        """Rows that are first in line for their key, due, and whose key has no row being
        worked on; leased to us (only among `ids`, or of one `key_value`, when given)."""
        now = self.clock()
        table = self.model.__table__
        params: dict[str, Any] = {"now": now, "limit": limit}
        if ids is not None:
            params["ids"] = list(ids)
        if key_value is not None:
            params["key_value"] = key_value
        query = _claim_query(table, self.key, self.order, ids is not None, key_value is not None)
        claimed = []
        for candidate in session.scalars(query, params).all():
            # Conditional, so that two SQLite processes never both take a row.
            taken = session.execute(
                _lease_update(table),
                {
                    "candidate": candidate,
                    "now": now,
                    "owner": self.owner,
                    "until": now + self.lease,
                },
            )
            if taken.rowcount == 1:
                claimed.append(candidate)
        if not claimed:
            return []
        rows = select(table).where(table.c.id.in_(claimed)).order_by(table.c.id)
        return session.execute(rows).all()

    def renew(self, ids: Iterable[int]) -> None:
        """Keeps the leases of rows still being worked on."""
        ids = list(ids)
        if ids:
            with self._transaction() as session:
                session.execute(
                    update(self.model)
                    .where(self.model.id.in_(ids), self.model.lease_owner == self.owner)
                    .values(lease_until=self.clock() + self.lease)
                    .execution_options(synchronize_session=False)
                )

    def release(self, ids: Iterable[int], not_before: datetime | None = None) -> None:
        """Gives rows back to any worker (now, or from `not_before`)."""
        ids = list(ids)
        if ids:
            with self._transaction() as session:
                session.execute(
                    update(self.model)
                    .where(
                        self.model.id.in_(ids),
                        self.model.lease_owner == self.owner,
                        self.model.status == "pending",
                    )
                    .values(lease_until=None, not_before=not_before)
                    .execution_options(synchronize_session=False)
                )

    def recover(self) -> int:
        """At start: rows this owner held when it last stopped are free again at once."""
        with self._transaction() as session:
            freed = session.execute(
                update(self.model)
                .where(self.model.lease_owner == self.owner, self.model.status == "pending")
                .values(lease_until=None)
                .execution_options(synchronize_session=False)
            )
            return freed.rowcount

    def pending(self) -> int:
        with self._transaction() as session:
            return _count_pending(session, self.model)


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
        messages (up to `ROWS_PER_STATEMENT`), so a group commit's batch costs about what
        one message does."""
        by_mid = {m.mid: m for m in sorted(messages, key=lambda m: m.sent_at_ms)}
        accepted = Accepted([], [])
        if not by_mid:
            return accepted
        ordered = list(by_mid.values())
        with _one_writer_at_a_time(self.engine), self.engine.begin() as connection:
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
        values = {
            "id": item.id,
            "status": status,
            "sender": hash_id(item.sender_id, self.hash_key),
            "now": self.clock(),
        }
        with _one_writer_at_a_time(self.engine), self.engine.begin() as connection:
            connection.execute(_SQL_SETTLE_MESSAGE, values)
            waits = connection.execute(_SQL_SENDER_WAITS, {"sender": item.sender_id})
            return waits.first() is not None


class Outbox(LeasedQueue):
    model = OutboxMessage
    key = "recipient_id"
    order = ("id",)

    def add(self, recipient_id: str, inbox_mid: str, seq: int, body: dict) -> int | None:
        """Commits a reply, leased to this owner to be sent at once, unless an earlier reply
        to the patient is still pending: then it waits, and whoever sends that one sends
        this one after. None when the reply was stored before (a turn run again after a
        crash) or waits. On every reply's path, so it is two plain statements."""
        now = self.clock()
        with _one_writer_at_a_time(self.engine), self.engine.begin() as connection:
            waits = connection.execute(_SQL_REPLIES_PENDING, {"recipient": recipient_id}).scalar()
            reply_id = connection.execute(
                _SQL_INSERT_REPLY,
                {
                    "recipient": recipient_id,
                    "mid": inbox_mid,
                    "seq": seq,
                    "body": body,
                    "attempts": 0 if waits else 1,
                    "owner": None if waits else self.owner,
                    "lease_until": None if waits else now + self.lease,
                    "now": now,
                },
            ).scalar()
        return None if waits else reply_id

    def claim(
        self, limit: int, ids: Iterable[int] | None = None, recipient_id: str | None = None
    ) -> list[OutboxItem]:
        with self._transaction() as session:
            rows = self._claim(session, limit, ids, recipient_id)
            return [
                OutboxItem(r.id, r.recipient_id, r.body, r.attempts, r.created_at) for r in rows
            ]

    def load(self, reply_id: int) -> OutboxItem:
        with self._transaction() as session:
            r = session.get(OutboxMessage, reply_id)
            return OutboxItem(r.id, r.recipient_id, r.body, r.attempts, r.created_at)

    def sent(self, reply_id: int, recipient_id: str, graph_mid: str | None = None) -> bool:
        """Graph accepted it: the body (a patient may be named in it) is erased and the
        recipient kept only as a keyed hash; Graph's id for it is kept (`OwnMessage`).
        True when another reply to the patient waits."""
        values = {
            "id": reply_id,
            "recipient": hash_id(recipient_id, self.hash_key),
            "now": self.clock(),
        }
        with _one_writer_at_a_time(self.engine), self.engine.begin() as connection:
            connection.execute(_SQL_REPLY_SENT, values)
            if graph_mid:
                connection.execute(_SQL_OWN_MESSAGE, {"mid": graph_mid, "now": values["now"]})
            return bool(
                connection.execute(_SQL_REPLIES_PENDING, {"recipient": recipient_id}).scalar()
            )

    def failed(self, reply_id: int, error: str) -> None:
        """A dead letter: kept, with its body, for `python -m clinic outbox --failed`."""
        self._settle(reply_id, OUTBOX_FAILED, error=error[:64])

    def _settle(self, reply_id: int, status: str, **values: Any) -> None:
        with self._transaction() as session:
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == reply_id)
                .values(status=status, lease_until=None, **values)
                .execution_options(synchronize_session=False)
            )

    def retry_later(self, reply_id: int, not_before: datetime, error: str) -> None:
        with self._transaction() as session:
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == reply_id)
                .values(lease_until=None, not_before=not_before, error=error[:64])
                .execution_options(synchronize_session=False)
            )

    def listing(self, failed_only: bool = False) -> list[OutboxMessage]:
        """Replies not sent yet, or given up (dead letters), oldest first."""
        statuses = [OUTBOX_FAILED] if failed_only else [OUTBOX_PENDING, OUTBOX_FAILED]
        with self._transaction() as session:
            return list(
                session.scalars(
                    select(OutboxMessage)
                    .where(OutboxMessage.status.in_(statuses))
                    .order_by(OutboxMessage.id)
                )
            )


# SQLite lets one writer in at a time and makes the others sleep in growing steps (1, 2,
# 5, 10… ms); the queues' many short writes from one process's threads take turns here
# instead, which costs microseconds.
_SQLITE_WRITERS: dict[str, threading.Lock] = {}
_SQLITE_WRITERS_LOCK = threading.Lock()


def _one_writer_at_a_time(engine: Engine) -> AbstractContextManager:
    if engine.dialect.name != "sqlite":
        return nullcontext()
    with _SQLITE_WRITERS_LOCK:
        return _SQLITE_WRITERS.setdefault(str(engine.url), threading.Lock())


def forget_sender(session: Session, instagram_id: str, hashed: str) -> None:
    """Erasure: the patient's settled delivery records go; one still on its way (the answer
    to "delete my data" itself) is settled, and so reduced to hashes, soon after."""
    for model, column in ((InboxMessage, "sender_id"), (OutboxMessage, "recipient_id")):
        session.execute(
            delete(model)
            .where(getattr(model, column).in_([instagram_id, hashed]), model.status != "pending")
            .execution_options(synchronize_session=False)
        )


# Built once per queue and shape: building them per claim cost more than running them.
@cache
def _claim_query(table: Table, key: str, order: tuple[str, ...], by_ids: bool, by_key: bool) -> Any:
    row, other = table, table.alias("other")
    now = bindparam("now", type_=_TIME)
    same_key = other.c[key] == row.c[key]
    first_in_line = ~exists().where(
        same_key, other.c.status == "pending", _before(other.c, row.c, order)
    )
    key_at_work = exists().where(
        same_key, other.c.status == "pending", other.c.id != row.c.id, other.c.lease_until > now
    )
    query = (
        select(row.c.id)
        .where(
            row.c.status == "pending",
            or_(row.c.lease_until.is_(None), row.c.lease_until < now),
            or_(row.c.not_before.is_(None), row.c.not_before <= now),
            first_in_line,
            ~key_at_work,
        )
        .order_by(row.c.id)
        .limit(bindparam("limit"))
        .with_for_update(skip_locked=True)  # PostgreSQL: no replica waits on another
    )
    if by_ids:
        query = query.where(row.c.id.in_(bindparam("ids", expanding=True)))
    if by_key:
        query = query.where(row.c[key] == bindparam("key_value"))
    return query


@cache
def _lease_update(table: Table) -> Any:
    now = bindparam("now", type_=_TIME)
    return (
        update(table)
        .where(
            table.c.id == bindparam("candidate"),
            or_(table.c.lease_until.is_(None), table.c.lease_until < now),
        )
        .values(
            lease_owner=bindparam("owner"),
            lease_until=bindparam("until", type_=_TIME),
            attempts=table.c.attempts + 1,
        )
    )


def _before(earlier: Any, row: Any, order: tuple[str, ...]) -> Any:
    """`earlier` comes before `row` in the ordering columns (lexicographic)."""
    first, *rest = order
    condition = getattr(earlier, first) < getattr(row, first)
    if rest:
        condition = or_(
            condition,
            and_(
                getattr(earlier, first) == getattr(row, first), _before(earlier, row, tuple(rest))
            ),
        )
    return condition


def _count_pending(session: Session, model: Any) -> int:
    return session.scalar(select(func.count()).select_from(model).where(model.status == "pending"))


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
        bindparam("now", type_=_TIME),
        *(bindparam(f"lease_until_{i}", type_=_TIME) for i in range(count)),
    )


def _moment(timestamp_ms: int, fallback: datetime) -> datetime:
    """Meta's timestamp, unless it is missing or later than now."""
    if timestamp_ms <= 0:
        return fallback
    return min(datetime.fromtimestamp(timestamp_ms / 1000, fallback.tzinfo), fallback)
