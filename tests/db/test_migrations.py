"""Alembic migrations on SQLite, PostgreSQL and MariaDB: to head from empty, twice, down and up again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect

from convoflow.db.migrate import alembic_config, current_revision, head_revision, upgrade_to_head
from convoflow.db.models import Base
from tests.utils.services import create_database, drop_database, new_run_id, unavailable


@pytest.fixture
def empty_database(backend: str) -> Iterator[str]:
    url = create_database(backend, f"m{new_run_id()}")
    if url is None:
        unavailable(backend)
        return
    try:
        yield url
    finally:
        from convoflow.db.engine import forget_engines

        forget_engines(url)
        drop_database(backend, url)


def _columns(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return {column["name"] for column in inspect(engine).get_columns("conversation_turns")}
    finally:
        engine.dispose()


def test_upgrade_creates_the_schema_of_the_models(empty_database: str) -> None:
    assert current_revision(empty_database) is None
    before, after = upgrade_to_head(empty_database)
    assert (before, after) == (None, head_revision(empty_database))
    assert set(_columns(empty_database)) == {
        column.name for column in Base.metadata.tables["conversation_turns"].columns
    }
    engine = create_engine(empty_database)
    try:
        inspector = inspect(engine)
        unique = {tuple(c["column_names"]) for c in inspector.get_unique_constraints("conversation_turns")}
        indexed = {tuple(i["column_names"]) for i in inspector.get_indexes("conversation_turns")}
    finally:
        engine.dispose()
    assert ("turn_id",) in unique or ("turn_id",) in indexed
    assert {("session_id",), ("timestamp",), ("session_id", "timestamp")} <= indexed


def test_upgrade_twice_changes_nothing(empty_database: str) -> None:
    upgrade_to_head(empty_database)
    before, after = upgrade_to_head(empty_database)
    assert before == after == head_revision(empty_database)


def test_downgrade_to_base_and_back(empty_database: str) -> None:
    upgrade_to_head(empty_database)
    command.downgrade(alembic_config(empty_database), "base")
    assert current_revision(empty_database) is None
    upgrade_to_head(empty_database)
    assert current_revision(empty_database) == head_revision(empty_database)
