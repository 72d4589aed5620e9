"""Claims under a lease, shared by the inbox and the outbox (docs/delivery.md).

A queue is a table of pending rows with a key (the patient). A claim takes rows that are
first in line for their key, due, and whose key has no row being worked on, and leases
them to one owner: `FOR UPDATE SKIP LOCKED` on PostgreSQL (no replica waits on another),
then a conditional UPDATE (so two SQLite processes never both take a row). The owner renews
its leases while it works; a dead owner's rows are free for any other once they run out.
This is the only lease mechanism of the project.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    Table,
    and_,
    bindparam,
    exists,
    func,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from clinic.audit import hash_id
from clinic.db import transaction
from clinic.models import UTCDateTime, utc_now

TIME = UTCDateTime()
_SQL_SETTLE_MESSAGE = text(
    "UPDATE inbox_messages SET status = :status, text = NULL, sender_id = :sender, "
    "lease_until = NULL, done_at = :now WHERE id = :id"
).bindparams(bindparam("now", type_=TIME))
_SQL_SENDER_WAITS = text(
    "SELECT 1 FROM inbox_messages WHERE sender_id = :sender AND status = 'pending' LIMIT 1"
)


def settle_message(
    connection: Connection, item_id: int, sender_id: str, status: str, hash_key: str, now: datetime
) -> bool:
    """Marks an inbox message done or failed in the caller's transaction: its text erased,
    its sender kept only as a keyed hash. True when the patient's next message waits."""
    values = {"id": item_id, "status": status, "sender": hash_id(sender_id, hash_key), "now": now}
    connection.execute(_SQL_SETTLE_MESSAGE, values)
    return connection.execute(_SQL_SENDER_WAITS, {"sender": sender_id}).first() is not None


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
        with one_writer_at_a_time(self.engine), transaction(self.engine) as session:
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


# SQLite lets one writer in at a time and makes the others sleep in growing steps (1, 2,
# 5, 10… ms); the queues' many short writes from one process's threads take turns here
# instead, which costs microseconds.
_SQLITE_WRITERS: dict[str, threading.Lock] = {}
_SQLITE_WRITERS_LOCK = threading.Lock()


def one_writer_at_a_time(engine: Engine) -> AbstractContextManager:
    if engine.dialect.name != "sqlite":
        return nullcontext()
    with _SQLITE_WRITERS_LOCK:
        return _SQLITE_WRITERS.setdefault(str(engine.url), threading.Lock())


# Built once per queue and shape: building them per claim cost more than running them.
@cache
def _claim_query(table: Table, key: str, order: tuple[str, ...], by_ids: bool, by_key: bool) -> Any:
    row, other = table, table.alias("other")
    now = bindparam("now", type_=TIME)
    # Written out, not bound: SQLite uses a partial index (`WHERE status = 'pending'`) only
    # for a query that says so literally; with a parameter each look-up scanned every row.
    pending = literal_column("'pending'")
    same_key = other.c[key] == row.c[key]
    first_in_line = ~exists().where(
        same_key, other.c.status == pending, _before(other.c, row.c, order)
    )
    # With no row of its key before it, every other row of the key comes after it: said
    # that way, the look-up reads the same index as `first_in_line` (one key's rows).
    key_at_work = exists().where(
        same_key,
        other.c.status == pending,
        _before(row.c, other.c, order),
        other.c.lease_until > now,
    )
    query = (
        select(row.c.id)
        .where(
            row.c.status == pending,
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
    now = bindparam("now", type_=TIME)
    return (
        update(table)
        .where(
            table.c.id == bindparam("candidate"),
            or_(table.c.lease_until.is_(None), table.c.lease_until < now),
        )
        .values(
            lease_owner=bindparam("owner"),
            lease_until=bindparam("until", type_=TIME),
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
