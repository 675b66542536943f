"""RabbitMQ as the broker, end to end: a turn answered by the API is stored by a worker consuming over AMQP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import make_stack
from tests.utils.processes import wait_until
from tests.utils.services import RedisTarget, amqp_url, drop_vhost, rabbitmq_vhost, unavailable
from tests.utils.stack import Stack, running


@pytest.fixture(scope="module")
def rabbit_stack(run_id: str, sqlite_url: str, redis_target: RedisTarget, log_dir: Path) -> Iterator[Stack]:
    vhost = rabbitmq_vhost(f"r{run_id}")
    if vhost is None:
        unavailable("RabbitMQ")
        return
    stack = make_stack("rabbitmq", redis_target, sqlite_url, log_dir, CELERY_BROKER_URL=amqp_url(vhost))
    try:
        with running(stack) as live:
            yield live
    finally:
        drop_vhost(vhost)


def test_a_turn_travels_over_amqp_to_the_database(rabbit_stack: Stack) -> None:
    session = f"amqp-{uuid.uuid4()}"
    assert "amqp://" in rabbit_stack.processes[0].log()
    with rabbit_stack.http() as client:
        answer = client.post("/run", json={"user_input": "over rabbit", "session_id": session})
        assert answer.status_code == 200, answer.text
        turn_id = answer.json()["turn_id"]

        def stored() -> bool:
            return [t["turn_id"] for t in client.get("/history", params={"session_id": session}).json()["history"]] == [
                turn_id
            ]

        wait_until(stored, 30, what="the turn to be stored")
        health = client.get("/health")
    assert health.status_code == 200, health.text
