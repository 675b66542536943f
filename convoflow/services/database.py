"""Units of work over the configured database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from convoflow.config import Settings
from convoflow.db.engine import get_engine, session_factory


@contextmanager
def unit_of_work(settings: Settings) -> Iterator[Session]:
    """A session that commits when the block succeeds and rolls back when it raises."""
    engine = get_engine(settings.sqlalchemy_url, settings.db_pool_size, settings.db_max_overflow)
    with session_factory(engine)() as session, session.begin():
        yield session


@contextmanager
def read_only(settings: Settings) -> Iterator[Session]:
    engine = get_engine(settings.sqlalchemy_url, settings.db_pool_size, settings.db_max_overflow)
    with session_factory(engine)() as session:
        yield session
