"""The migrations build exactly the tables the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from clinic.db import create_database_engine
from clinic.models import Base


def test_migrated_schema_matches_the_models(database_url):
    engine = create_database_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"include_name": _ours, "compare_type": False}
            )
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_erased_patient_ids_are_never_reused_on_sqlite(sqlite_url):
    engine = create_database_engine(sqlite_url)
    try:
        with engine.connect() as connection:
            sql = connection.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'patients'"
            ).scalar()
    finally:
        engine.dispose()
    assert "AUTOINCREMENT" in sql


# SQLite's own table, and Rasa's tracker store (other tests put it in the same database).
NOT_OURS = {"sqlite_sequence", "events"}


def _ours(name, type_, parent_names) -> bool:
    table = name if type_ == "table" else parent_names.get("table_name")
    return table not in NOT_OURS
