"""Shared fixtures: real databases (a SQLite file, the PostgreSQL server) and a frozen clock."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text

from clinic.application import ClinicApp
from clinic.context import Clinic
from clinic.db import create_database_engine
from clinic.migrate import upgrade_to_latest
from clinic.settings import Settings
from tests.databases import temporary_postgres_database, with_demo_profile

TABLES = (
    "notifications, audit_events, appointments, blocked_times, working_hours, patients, doctors, "
    "inbox_messages, outbox_messages, handoffs, own_messages, staff, staff_notices, "
    "visit_types, clinic_facts, clinic_topics, text_overrides, schedule_overrides, "
    "text_threads, send_pace, erasure_markers"
)

# Nothing listens on port 9: connecting fails at once, like a database outage.
UNREACHABLE_DATABASE_URL = "postgresql+psycopg2://postgres@127.0.0.1:9/clinic"

TEST_NAME = "PATIENT_TEST"
# A fictional number from the range reserved for fiction (555-0100..0199): valid, reaches no one.
TEST_PHONE = "+12025550143"


class FrozenClock:
    """A clock tests move by hand."""

    def __init__(self, moment: datetime):
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, delta: timedelta) -> None:
        self.moment += delta


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    upgrade_to_latest(f"sqlite:///{path}")
    with_demo_profile(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "clinic.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh database on the real PostgreSQL server, migrated once, dropped at the end."""
    with temporary_postgres_database() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_database: str) -> str:
    engine = create_database_engine(postgres_database)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    engine.dispose()
    with_demo_profile(postgres_database)
    return postgres_database


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def clock() -> FrozenClock:
    # A Monday morning, clinic time (America/New_York, EST).
    return FrozenClock(datetime(2026, 2, 2, 13, 0, tzinfo=timezone.utc))


def build_clinic(url: str, clock: FrozenClock, **settings) -> Clinic:
    return Clinic(
        engine=create_database_engine(url),
        settings=Settings(database_url=url, **settings),
        clock=clock,
    )


@pytest.fixture
def clinic(sqlite_url: str, clock: FrozenClock) -> Iterator[Clinic]:
    """A clinic on a fresh SQLite database."""
    built = build_clinic(sqlite_url, clock)
    yield built
    built.engine.dispose()


@pytest.fixture
def any_clinic(database_url: str, clock: FrozenClock) -> Iterator[Clinic]:
    """The same, once on SQLite and once on PostgreSQL."""
    built = build_clinic(database_url, clock)
    yield built
    built.engine.dispose()


@pytest.fixture
def app(request: pytest.FixtureRequest) -> ClinicApp:
    """The application the actions are built with, on the test's clinic (`any_clinic`
    when the test runs on both databases, else `clinic`)."""
    name = "any_clinic" if "any_clinic" in request.fixturenames else "clinic"
    return ClinicApp(request.getfixturevalue(name))


def unreachable_app(clock: FrozenClock) -> ClinicApp:
    """An application whose database can't be reached, like during an outage."""
    return ClinicApp(build_clinic(UNREACHABLE_DATABASE_URL, clock))
