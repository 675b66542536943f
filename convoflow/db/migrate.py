"""Bring a database to the latest schema with Alembic, safely when several processes try at once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from convoflow.config import PROJECT_ROOT
from convoflow.db.engine import get_engine

LOCK_NAME = "convoflow_migrations"
LOCK_KEY = 734_112_001


def alembic_config(url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.attributes["database_url"] = url
    return config


@contextmanager
def _migration_lock(connection: Connection) -> Iterator[None]:
    """A server-side lock so two workers initialising at once do not both create the table."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": LOCK_KEY})
    elif dialect in ("mysql", "mariadb"):
        connection.execute(text("SELECT GET_LOCK(:name, 60)"), {"name": LOCK_NAME})
    connection.commit()
    try:
        yield
    finally:
        if dialect == "postgresql":
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
        elif dialect in ("mysql", "mariadb"):
            connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": LOCK_NAME})
        connection.commit()


def current_revision(url: str) -> str | None:
    with get_engine(url).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def upgrade_to_head(url: str) -> tuple[str | None, str | None]:
    """Migrate to the latest revision; returns (revision before, revision after). Safe to run twice."""
    config = alembic_config(url)
    engine = get_engine(url)
    with engine.connect() as lock_connection, _migration_lock(lock_connection):
        before = current_revision(url)
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        return before, current_revision(url)
