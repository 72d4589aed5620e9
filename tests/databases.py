"""Throw-away databases on the real servers, for tests and benchmarks."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import make_url

from clinic.context import Clinic
from clinic.db import create_database_engine
from clinic.migrate import upgrade_to_latest
from clinic.profile import load_profile
from clinic.profile_store import import_profile
from clinic.settings import DEFAULT_PROFILE_PATH, Settings

POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)


def with_demo_profile(database_url: str) -> None:
    """The demo clinic's facts and visit types (clinic/profile.yml), as `seed --demo`
    imports them: what the tests' doctors offer and the bot answers questions from."""
    engine = create_database_engine(database_url)
    try:
        import_profile(
            Clinic(engine, Settings(database_url=database_url)), load_profile(DEFAULT_PROFILE_PATH)
        )
    finally:
        engine.dispose()


@contextmanager
def temporary_postgres_database(prefix: str = "clinic_test") -> Iterator[str]:
    """A new, migrated database on the PostgreSQL server, with the demo clinic's profile;
    dropped afterwards."""
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
        with_demo_profile(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
