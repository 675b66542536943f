"""Shared fixtures: real Redis, real databases, real worker and API processes, all in a private namespace."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.utils.auth import PREVIOUS_KEYS, api_keys_setting
from tests.utils.services import (
    RedisTarget,
    create_database,
    drop_database,
    machine_redis_or_private,
    new_run_id,
    unavailable,
)
from tests.utils.stack import Stack, running

BACKENDS = ("sqlite", "postgresql", "mariadb")


@pytest.fixture(scope="session")
def run_id() -> str:
    return new_run_id()


@pytest.fixture(scope="session")
def log_dir(request: pytest.FixtureRequest) -> Iterator[Path]:
    """Where child processes write their output; kept (and named at the end) only when a test failed."""
    path = Path(tempfile.mkdtemp(prefix="convoflow-test-logs-"))
    failed_before = request.session.testsfailed
    yield path
    if request.session.testsfailed == failed_before:
        shutil.rmtree(path, ignore_errors=True)
    else:
        print(f"\nprocess logs kept in {path}")


@pytest.fixture(scope="session")
def redis_target() -> Iterator[RedisTarget]:
    target = machine_redis_or_private()
    yield target
    if target.owned is not None:
        target.owned.remove()


def _database(backend: str, run_id: str) -> Iterator[str]:
    url = create_database(backend, f"{backend[:2]}{run_id}")
    if url is None:
        unavailable(backend)
        return
    try:
        yield url
    finally:
        drop_database(backend, url)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def database_url(backend: str, run_id: str) -> Iterator[str]:
    yield from _database(backend, run_id)


@pytest.fixture(scope="session")
def sqlite_url(run_id: str) -> Iterator[str]:
    yield from _database("sqlite", f"s{run_id}")


def make_stack(name: str, redis_target: RedisTarget, database_url: str, log_dir: Path, **env: str) -> Stack:
    return Stack(
        name=name,
        redis_host=redis_target.host,
        redis_port=redis_target.port,
        database_url=database_url,
        log_dir=log_dir,
        extra_env=dict(env),
        redis_password=redis_target.password,
    )


@pytest.fixture(scope="session")
def stack(backend: str, database_url: str, redis_target: RedisTarget, log_dir: Path) -> Iterator[Stack]:
    """A running stack (worker + API) on each of the three databases."""
    with running(make_stack(backend, redis_target, database_url, log_dir)) as live:
        yield live


@pytest.fixture(scope="session")
def sqlite_stack(sqlite_url: str, redis_target: RedisTarget, log_dir: Path) -> Iterator[Stack]:
    """A running stack on SQLite, for tests where the database does not matter."""
    with running(make_stack("sqlite-main", redis_target, sqlite_url, log_dir)) as live:
        yield live


@pytest.fixture(scope="session")
def keyed_sqlite_url(run_id: str) -> Iterator[str]:
    yield from _database("sqlite", f"k{run_id}")


@pytest.fixture(scope="session")
def keyed_stack(keyed_sqlite_url: str, redis_target: RedisTarget, log_dir: Path) -> Iterator[Stack]:
    """A running stack with API_KEYS (and API_KEYS_PREVIOUS) from tests.utils.auth, on its own SQLite database."""
    stack = make_stack(
        "keyed",
        redis_target,
        keyed_sqlite_url,
        log_dir,
        API_KEYS=api_keys_setting(),
        API_KEYS_PREVIOUS=api_keys_setting(PREVIOUS_KEYS),
    )
    with running(stack) as live:
        yield live
