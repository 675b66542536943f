"""Saves retried over RabbitMQ quorum queues: while the database is unreachable each save goes back with a countdown
through RabbitMQ's native delayed delivery (a quorum queue holds no message for later), and is stored once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import make_stack
from tests.faults.conftest import start_worker_and_api, stored_after_catch_up
from tests.utils.conversations import wait_for_state
from tests.utils.services import RedisTarget, new_run_id, private_vhost
from tests.utils.tcp_proxy import LossyProxy, lossy_proxy


@pytest.fixture
def quorum_broker_url() -> Iterator[str]:
    with private_vhost(f"qr{new_run_id()}") as url:
        yield url


@pytest.fixture
def database_proxy(postgres_url: str) -> Iterator[tuple[LossyProxy, str]]:
    """A proxy in front of the test's PostgreSQL database, and the database's URL through it."""
    url = make_url(postgres_url)
    with lossy_proxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        yield proxy, url.set(port=proxy.port).render_as_string(hide_password=False)


def test_saves_retried_while_the_database_is_unreachable_are_stored_once_over_quorum_queues(
    quorum_broker_url: str, database_proxy: tuple[LossyProxy, str], redis_target: RedisTarget, log_dir: Path
) -> None:
    proxy, database_url = database_proxy
    stack = make_stack(
        "quorum-retries",
        redis_target,
        database_url,
        log_dir,
        CELERY_BROKER_URL=quorum_broker_url,
        BROKER_QUORUM_QUEUES="true",
    )
    session = f"quorum-retry-{uuid.uuid4()}"
    try:
        worker = start_worker_and_api(stack)
        proxy.refuse()
        with stack.http() as client:
            answers = [
                client.post("/run", json={"user_input": f"while down {index}", "session_id": session}).json()
                for index in range(3)
            ]
        for answer in answers:
            wait_for_state(stack, answer["task_id"], "retrying", timeout=60)
        proxy.restore()
        stored = stored_after_catch_up(stack, session, len(answers), timeout=90)
        log = worker.log()
    finally:
        proxy.restore()
        stack.stop()
    assert sorted(stored) == sorted(answer["turn_id"] for answer in answers)
    assert "may block the worker" not in log and "Direct exchanges are not supported" not in log
