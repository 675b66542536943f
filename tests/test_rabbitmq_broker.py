"""RabbitMQ as the broker, end to end: a turn answered by the API is stored by a worker consuming over AMQP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from amqp.exceptions import PreconditionFailed
from kombu import Connection

from convoflow.tasks import names
from tests.conftest import make_stack
from tests.utils.processes import wait_until
from tests.utils.services import RedisTarget, private_vhost
from tests.utils.stack import Stack, running


@pytest.fixture(scope="module")
def rabbit_stack(run_id: str, sqlite_url: str, redis_target: RedisTarget, log_dir: Path) -> Iterator[Stack]:
    with (
        private_vhost(f"r{run_id}") as broker_url,
        running(make_stack("rabbitmq", redis_target, sqlite_url, log_dir, CELERY_BROKER_URL=broker_url)) as live,
    ):
        yield live


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


# --- BROKER_QUORUM_QUEUES: replicated queues, countdowns through native delayed delivery ------------------


@pytest.fixture(scope="module")
def quorum_stack(run_id: str, sqlite_url: str, redis_target: RedisTarget, log_dir: Path) -> Iterator[Stack]:
    with private_vhost(f"q{run_id}") as broker_url:
        stack = make_stack(
            "rabbitmq-quorum",
            redis_target,
            sqlite_url,
            log_dir,
            CELERY_BROKER_URL=broker_url,
            BROKER_QUORUM_QUEUES="true",
        )
        with running(stack) as live:
            yield live


def amqp_channel(connection: Connection) -> Any:
    """A new channel (py-amqp's: a refused declare closes it)."""
    return connection.channel()


def test_with_quorum_queues_a_turn_is_stored_and_the_queues_are_quorum_queues(quorum_stack: Stack) -> None:
    session = f"quorum-{uuid.uuid4()}"
    with quorum_stack.http() as client:
        answer = client.post("/run", json={"user_input": "over a quorum queue", "session_id": session})
        assert answer.status_code == 200, answer.text
        wait_until(lambda: len(quorum_stack.stored_turns(session)) == 1, 30, what="the turn to be stored")
        health = client.get("/health")
    assert health.status_code == 200, health.text
    with Connection(quorum_stack.settings.broker_url) as connection:
        for name in ("database", "workflow"):
            # Declaring a queue again with other arguments is refused: only the quorum type is accepted.
            amqp_channel(connection).queue_declare(
                name, durable=True, auto_delete=False, arguments={"x-queue-type": "quorum"}
            )
            with pytest.raises(PreconditionFailed, match="x-queue-type"):
                amqp_channel(connection).queue_declare(
                    name, durable=True, auto_delete=False, arguments={"x-queue-type": "classic"}
                )


def test_with_quorum_queues_a_countdown_goes_through_native_delayed_delivery(quorum_stack: Stack) -> None:
    delayed = quorum_stack.task(names.CHECK_DATABASE).apply_async(countdown=1)
    assert delayed.get(timeout=60)["success"] is True
    with Connection(quorum_stack.settings.broker_url) as connection:
        # The worker declared Celery's delay levels (exchanges celery_delayed_0..27) and bound the queues to them.
        amqp_channel(connection).exchange_declare("celery_delayed_27", "topic", passive=True)
    worker_log = quorum_stack.processes[0].log()
    assert "Direct exchanges are not supported" not in worker_log
    assert "may block the worker" not in worker_log
