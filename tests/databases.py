"""Throw-away databases on the real servers, for tests and benchmarks."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import make_url

from clinic.db import create_database_engine
from clinic.migrate import upgrade_to_latest

POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)


@contextmanager
def temporary_postgres_database(prefix: str = "clinic_test") -> Iterator[str]:
    """A new, migrated database on the PostgreSQL server; dropped afterwards."""
    admin = create_database_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except Exception as error:
        admin.dispose()
        shown = make_url(POSTGRES_ADMIN_URL).render_as_string()
        raise RuntimeError(
            f"PostgreSQL is needed at {shown} (set TEST_POSTGRES_URL, or run .ci/run)"
        ) from error
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade_to_latest(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
