"""REDIS_PASSWORD is honoured by the API, the broker, the result backend, Beat's lock and Flower, and never shown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.conftest import make_stack
from tests.utils.conversations import assert_round_trip
from tests.utils.ops import wait_until_flower_lists_a_worker
from tests.utils.services import RedisTarget, running_private_redis
from tests.utils.stack import Stack, running

# Characters that must be escaped in a redis:// URL, to prove the password is quoted where URLs are built.
PASSWORD = "s3cr@t/pa:ss#word%41"


@pytest.fixture(scope="module")
def protected_redis() -> Iterator[RedisTarget]:
    with running_private_redis(requirepass=PASSWORD) as server:
        yield RedisTarget("127.0.0.1", server.port, server, PASSWORD)


@pytest.fixture(scope="module")
def protected_stack(protected_redis: RedisTarget, sqlite_url: str, log_dir: Path) -> Iterator[Stack]:
    stack = make_stack("redis-password", protected_redis, sqlite_url, log_dir, FLOWER_BASIC_AUTH="ops:flower-pw-1")
    with running(stack, worker_args=("-c", "1")) as live:
        yield live


def test_run_and_history_round_trip_through_a_password_protected_redis(protected_stack: Stack) -> None:
    assert_round_trip(protected_stack)
    for process in protected_stack.processes:
        log = process.log()
        assert PASSWORD not in log and quote(PASSWORD, safe="") not in log, process.name


def test_the_retention_job_takes_its_redis_lock_with_the_password(protected_stack: Stack) -> None:
    result = protected_stack.call("convoflow.cleanup_expired_conversations", timeout=60)
    assert result["success"] is True and result["skipped"] is False


def test_flower_reaches_the_workers_through_the_password_protected_broker(protected_stack: Stack) -> None:
    process, url = protected_stack.start_flower()
    wait_until_flower_lists_a_worker(url, ("ops", "flower-pw-1"))
    assert PASSWORD not in process.log()


@pytest.mark.parametrize("password", ["wrong-password", ""], ids=["wrong", "missing"])
def test_a_wrong_password_answers_503_naming_redis_without_any_password(
    protected_redis: RedisTarget, sqlite_url: str, log_dir: Path, password: str
) -> None:
    wrong = RedisTarget(protected_redis.host, protected_redis.port, None, password)
    stack = make_stack("redis-wrong-password", wrong, sqlite_url, log_dir)
    api = stack.start_api()
    try:
        with stack.http() as client:
            run = client.post("/run", json={"user_input": "hello"})
            history = client.get("/history")
            health = client.get("/health")
    finally:
        stack.stop()
    address = f"127.0.0.1:{protected_redis.port}"
    assert run.status_code == history.status_code == health.status_code == 503
    assert address in run.json()["message"] and address in history.json()["message"]
    assert not health.json()["checks"]["redis"]["ok"]
    for text in (run.text, history.text, health.text, api.log()):
        assert PASSWORD not in text
        assert not password or password not in text
