"""DB_STATEMENT_TIMEOUT_SECONDS: a worker's statement stuck behind another session's lock ends with a transient error
(the task retries) instead of holding a thread for good; the threads pool enforces no TASK_TIME_LIMIT."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from convoflow.config import Settings
from convoflow.db.engine import get_engine
from convoflow.db.errors import TRANSIENT_DB_ERRORS
from convoflow.db.migrate import upgrade_to_head
from convoflow.db.repository import NewTurn
from convoflow.services.conversations import remove_turns, store_turns
from convoflow.services.database import read, unit_of_work

SLEEP = {"postgresql": "SELECT pg_sleep(30)", "mysql": "SELECT SLEEP(30)"}
# The session's limit in seconds.
LIMIT = {
    "postgresql": "SELECT setting::float / 1000 FROM pg_settings WHERE name = 'statement_timeout'",
    "mysql": "SELECT @@max_statement_time",
}


def _settings(url: str, seconds: float) -> Settings:
    return Settings(_env_file=None, database_url=url, db_statement_timeout_seconds=seconds)  # type: ignore[call-arg]


def _ended_by_the_statement_timeout(exc: OperationalError) -> bool:
    """The server's own statement timeout, not a lock-wait timeout or a lost connection."""
    orig: Any = exc.orig
    if type(orig).__name__ == "QueryCanceled":  # psycopg: canceling statement due to statement timeout
        return "statement timeout" in str(orig)
    return bool(orig.args and orig.args[0] == 1969)  # MariaDB: max_statement_time exceeded


def test_a_write_waiting_for_a_lock_ends_with_a_transient_error(server_url: str) -> None:
    upgrade_to_head(server_url)
    settings = _settings(server_url, 0.5)
    turn = NewTurn(uuid.uuid4(), "locked", "q", "a", datetime.now(UTC))
    store_turns(settings, [turn])
    holder = create_engine(server_url)
    try:
        with holder.connect() as connection, connection.begin():
            # Another session (an operator's open transaction, say) holds the turn's row.
            connection.execute(
                text("UPDATE conversation_turns SET status = 'complete' WHERE session_id = :s"), {"s": "locked"}
            )
            with pytest.raises(OperationalError) as raised:
                remove_turns(settings, [turn.turn_id])
            connection.rollback()
    finally:
        holder.dispose()

    assert isinstance(raised.value, TRANSIENT_DB_ERRORS)  # so the task retries
    assert _ended_by_the_statement_timeout(raised.value), raised.value
    assert remove_turns(settings, [turn.turn_id]) == 1  # once the lock is gone, the same work goes through


def test_a_long_read_ends_with_a_transient_error(server_url: str) -> None:
    settings = _settings(server_url, 0.5)
    sleep = text(SLEEP[make_url(server_url).get_backend_name()])

    with pytest.raises(OperationalError) as raised:
        read(settings, lambda connection: connection.execute(sleep).all())

    assert _ended_by_the_statement_timeout(raised.value), raised.value


def _limit(connection: Connection) -> float:
    return float(connection.execute(text(LIMIT[connection.dialect.name])).scalar_one())


def test_the_setting_reaches_both_pools_and_migrations_run_without_a_limit(server_url: str) -> None:
    settings = _settings(server_url, 30)

    with get_engine(server_url).connect() as migrations:  # the engine convoflow.db.migrate uses
        unlimited = _limit(migrations)
    with unit_of_work(settings) as session:
        writes = _limit(session.connection())

    assert read(settings, _limit) == 30
    assert writes == 30
    assert unlimited == 0
