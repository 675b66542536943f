"""A database of its own on each server (PostgreSQL, MariaDB), dropped afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from convoflow.db.engine import forget_engines
from tests.utils.services import create_database, drop_database, new_run_id, unavailable


@pytest.fixture(params=["postgresql", "mysql"])
def server_url(request: pytest.FixtureRequest) -> Iterator[str]:
    url = create_database(request.param, f"r{new_run_id()}")
    if url is None:
        unavailable(request.param)
        return
    try:
        yield url
    finally:
        forget_engines(url)
        drop_database(request.param, url)
