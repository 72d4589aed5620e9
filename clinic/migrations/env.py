"""Alembic environment: the URL comes from the config `clinic.migrate` builds."""

from alembic import context

from clinic.db import create_database_engine
from clinic.models import Base

config = context.config


def run_migrations() -> None:
    engine = create_database_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations()
