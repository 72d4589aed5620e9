"""The engine and the one way to open a transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.future import create_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import QueuePool

from clinic.errors import DatabaseUnavailableError

SQLITE_BUSY_TIMEOUT_SECONDS = 30


def create_database_engine(url: str, **options) -> Engine:
    """A SQLAlchemy 2.0-style engine; SQLite gets WAL, foreign keys and a busy timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, **options)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # SQLAlchemy 1.4 opens a file database anew for every transaction (NullPool), and
        # closing the last connection of a WAL database checkpoints it: keep a few open.
        options.setdefault("poolclass", QueuePool)
    connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False}
    engine = create_engine(url, connect_args=connect_args, **options)
    event.listen(engine, "connect", _configure_sqlite_connection)
    return engine


def _configure_sqlite_connection(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.close()


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A short session committed on success and rolled back on any error.

    Connection failures become `DatabaseUnavailableError` so adapters can answer
    politely without knowing SQLAlchemy.
    """
    try:
        with Session(engine, future=True, expire_on_commit=False) as session, session.begin():
            yield session
    except DBAPIError as error:
        if error.connection_invalidated or _is_connection_failure(error):
            raise DatabaseUnavailableError("the database is unreachable") from error
        raise


def _is_connection_failure(error: DBAPIError) -> bool:
    if isinstance(error, InterfaceError):
        return True
    if not isinstance(error, OperationalError):
        return False
    # SQLite reports a missing file or a lock timeout as OperationalError too.
    message = str(error.orig).lower()
    return not ("syntax error" in message or "no such" in message)
