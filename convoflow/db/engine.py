"""Engine and session factory, one per process and database URL."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

# One engine per (database URL, whether it is the read pool, statement timeout in seconds).
_engines: dict[tuple[str, bool, float], Engine] = {}
_lock = threading.Lock()


def _limit_mysql_statements(engine: Engine, seconds: float) -> None:
    """Each new MySQL or MariaDB connection ends statements that run longer than `seconds`."""

    @event.listens_for(engine, "connect")
    def _statement_timeout(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        if "mariadb" in dbapi_connection.get_server_info().lower():
            # MariaDB: every statement, lock waits included.
            cursor.execute(f"SET SESSION max_statement_time = {seconds:.3f}")
        else:
            # MySQL: read-only SELECTs only; writes wait at most innodb_lock_wait_timeout for a lock.
            cursor.execute(f"SET SESSION max_execution_time = {int(seconds * 1000)}")
        cursor.close()


def _create_engine(
    url: str, pool_size: int, max_overflow: int, reads: bool = False, statement_timeout: float = 0.0
) -> Engine:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    # Errors must never carry conversation text into logs: keep SQL parameters out of exception messages.
    options: dict[str, Any] = {"pool_pre_ping": not reads, "hide_parameters": True}
    if reads:
        # A read is one statement (or two independent ones): no transaction to open and roll back, so a read
        # costs one round trip instead of four. Stale connections are handled by the caller instead of a ping
        # per checkout (convoflow.services.database.read).
        options["isolation_level"] = "AUTOCOMMIT"
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        options["connect_args"] = {"timeout": 30}
    else:
        options.update(pool_size=pool_size, max_overflow=max_overflow, pool_recycle=1800)
    if backend == "postgresql" and statement_timeout > 0:
        # Set at connection start-up: no extra round trip, and it covers lock waits too.
        options["connect_args"] = {"options": f"-c statement_timeout={int(statement_timeout * 1000)}"}
    engine = create_engine(url, **options)
    if backend == "mysql" and statement_timeout > 0:
        _limit_mysql_statements(engine, statement_timeout)
    if backend == "sqlite":
        # WAL lets readers run beside the writer; the busy timeout makes concurrent workers wait, not fail.
        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    return engine


def get_engine(
    url: str, pool_size: int = 5, max_overflow: int = 5, *, reads: bool = False, statement_timeout: float = 0.0
) -> Engine:
    """The process's pooled engine for `url`, created on first use.

    `reads=True`: a second pool for reads, in autocommit mode and without a ping per checkout.
    `statement_timeout`: seconds after which PostgreSQL and MariaDB end a statement, lock waits included, with an
    OperationalError (a transient error to the tasks, which retry); MySQL ends only read-only SELECTs; SQLite has
    no such limit (its busy timeout bounds lock waits). 0: no limit (migrations, which may rightly run long).
    """
    key = (url, reads, statement_timeout)
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = _create_engine(url, pool_size, max_overflow, reads, statement_timeout)
        return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def dispose_engines() -> None:
    """Forget pooled connections inherited from a parent process (call after fork)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose(close=False)


def forget_engines(url: str) -> None:
    """Close and forget every pool of `url` (a database about to be dropped, in tests and the benchmark)."""
    with _lock:
        engines = [_engines.pop(key) for key in list(_engines) if key[0] == url]
    for engine in engines:
        engine.dispose()
