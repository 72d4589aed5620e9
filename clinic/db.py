"""The engine and the one way to open a transaction.

A SQLite database is private and forgets what is deleted: its folder is created readable
by its owner only (0700), its file and the files SQLite keeps beside it (-wal, -shm, made
with the database file's mode) are 0600, every connection runs with `secure_delete` (a
deleted row's bytes are overwritten, not left in free pages), and an erasure empties the
write-ahead log (`truncate_wal`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.future import create_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import QueuePool

from clinic.errors import DatabaseUnavailableError

SQLITE_BUSY_TIMEOUT_SECONDS = 30
PRIVATE_FOLDER, PRIVATE_FILE = 0o700, 0o600
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def create_database_engine(url: str, **options) -> Engine:
    """A SQLAlchemy 2.0-style engine; SQLite gets WAL, foreign keys and a busy timeout."""
    parsed = make_url(url)
    # An error's message never quotes a statement's values (a name, a phone number).
    options.setdefault("hide_parameters", True)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, **options)
    if parsed.database and parsed.database != ":memory:":
        private_sqlite_file(Path(parsed.database))
        # SQLAlchemy 1.4 opens a file database anew for every transaction (NullPool), and
        # closing the last connection of a WAL database checkpoints it: keep a few open.
        options.setdefault("poolclass", QueuePool)
    connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False}
    engine = create_engine(url, connect_args=connect_args, **options)
    event.listen(engine, "connect", _configure_sqlite_connection)
    secure_sqlite(engine)
    return engine


def private_sqlite_file(path: Path) -> None:
    """Creates the database's folder (0700) and file (0600) when missing, and takes away
    other users' access to an existing file and the files beside it."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=PRIVATE_FOLDER)
        path.parent.chmod(PRIVATE_FOLDER)  # whatever the umask
    # Only ever a new file (O_EXCL): closing any descriptor of an existing database would
    # drop the POSIX locks that SQLite's connections in this process hold on it.
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, PRIVATE_FILE))
    for file in [path, *(path.with_name(path.name + end) for end in SQLITE_SIDE_FILES)]:
        if file.exists() and file.stat().st_mode & 0o077:
            file.chmod(PRIVATE_FILE)


def secure_sqlite(engine: Engine) -> None:
    """Runs `secure_delete` on every new connection of a SQLite engine (another's too:
    Rasa's SQL tracker store)."""
    event.listen(engine, "connect", _secure_delete)


def truncate_wal(engine: Engine) -> None:
    """SQLite: copies the write-ahead log into the database and empties it, so that what
    was just erased is not still in it (a no-op elsewhere)."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def _configure_sqlite_connection(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.close()


def _secure_delete(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA secure_delete = ON")
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
