"""Engine and session factory, one per process and database URL."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

# One engine per (database URL, whether it is the read pool).
_engines: dict[tuple[str, bool], Engine] = {}
_lock = threading.Lock()


def _create_engine(url: str, pool_size: int, max_overflow: int, reads: bool = False) -> Engine:
    parsed = make_url(url)
    # Errors must never carry conversation text into logs: keep SQL parameters out of exception messages.
    options: dict[str, Any] = {"pool_pre_ping": not reads, "hide_parameters": True}
    if reads:
        # A read is one statement (or two independent ones): no transaction to open and roll back, so a read
        # costs one round trip instead of four. Stale connections are handled by the caller instead of a ping
        # per checkout (convoflow.services.database.read).
        options["isolation_level"] = "AUTOCOMMIT"
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        options["connect_args"] = {"timeout": 30}
    else:
        options.update(pool_size=pool_size, max_overflow=max_overflow, pool_recycle=1800)
    engine = create_engine(url, **options)
    if parsed.get_backend_name() == "sqlite":
        # WAL lets readers run beside the writer; the busy timeout makes concurrent workers wait, not fail.
        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    return engine


def get_engine(url: str, pool_size: int = 5, max_overflow: int = 5, *, reads: bool = False) -> Engine:
    """The process's pooled engine for `url`, created on first use.

    `reads=True`: a second pool for reads, in autocommit mode and without a ping per checkout.
    """
    key = (url, reads)
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = _create_engine(url, pool_size, max_overflow, reads)
        return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def dispose_engines() -> None:
    """Forget pooled connections inherited from a parent process (call after fork)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose(close=False)


def forget_engines(url: str) -> None:
    """Close and forget both pools of `url` (a database about to be dropped, in tests and the benchmark)."""
    with _lock:
        engines = [_engines.pop((url, reads), None) for reads in (False, True)]
    for engine in engines:
        if engine is not None:
            engine.dispose()
