"""The read pool pings no connection before use: a connection the server dropped is replaced, and the read succeeds."""

from __future__ import annotations

from typing import Any

import psycopg
from sqlalchemy import Connection, Engine, create_engine, text

from convoflow.config import Settings
from convoflow.db.engine import get_engine
from convoflow.services.database import read

BACKEND_SESSION_ID = {
    "postgresql": "SELECT pg_backend_pid()",
    "mysql": "SELECT CONNECTION_ID()",
}
KILL = {
    "postgresql": "SELECT pg_terminate_backend({id})",
    "mysql": "KILL {id}",
}


def _kind(engine: Engine) -> str:
    return "postgresql" if engine.dialect.name == "postgresql" else "mysql"


def _server_side_id(connection: Connection) -> int:
    return int(connection.execute(text(BACKEND_SESSION_ID[_kind(connection.engine)])).scalar_one())


def test_a_read_survives_its_pooled_connection_being_dropped(server_url: str) -> None:
    settings = Settings(_env_file=None, database_url=server_url)  # type: ignore[call-arg]
    first = read(settings, _server_side_id)  # the pool now holds this connection
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(KILL[_kind(admin)].format(id=first)))
    finally:
        admin.dispose()

    second = read(settings, _server_side_id)

    assert second != first  # answered on a fresh connection, not an error


def test_reads_run_outside_a_transaction(server_url: str) -> None:
    settings = Settings(_env_file=None, database_url=server_url)  # type: ignore[call-arg]

    def autocommit(connection: Connection) -> bool:
        connection.execute(text("SELECT 1"))
        dbapi: Any = connection.connection.dbapi_connection
        if _kind(connection.engine) == "postgresql":
            # Without autocommit psycopg would have opened a transaction for the SELECT.
            return bool(dbapi.info.transaction_status == psycopg.pq.TransactionStatus.IDLE)
        return bool(dbapi.get_autocommit())

    assert read(settings, autocommit) is True
    assert get_engine(server_url, reads=True).pool is not get_engine(server_url).pool
