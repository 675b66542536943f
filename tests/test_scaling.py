"""Scaling out on one machine: two worker processes on the queues, the API with several uvicorn workers,
and RabbitMQ as broker end to end with /health reading queue depth over AMQP."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import make_stack
from tests.utils.ops import health, parse_metrics, value
from tests.utils.processes import Process, wait_until
from tests.utils.services import RedisTarget, private_vhost
from tests.utils.stack import Stack

SAVE = "celery_tasks.save_conversation_task"


def _saves_done_by(worker: Process) -> int:
    return len(re.findall(r"stored turn [0-9a-f-]+", worker.log()))


def test_two_worker_processes_consume_and_health_lists_workers_per_queue(
    sqlite_url: str, redis_target: RedisTarget, log_dir: Path
) -> None:
    stack = make_stack("two-workers", redis_target, sqlite_url, log_dir)
    try:
        alpha = stack.start_worker("-Q", "database", "-n", "alpha@%h", "-c", "1", name="alpha")
        beta = stack.start_worker("-Q", "database,workflow", "-n", "beta@%h", "-c", "1", name="beta")
        stack.call("celery_tasks.init_database_task", timeout=60)
        stack.start_api()
        session = f"two-{uuid.uuid4()}"
        sent: list[str] = []

        def both_consumed() -> bool:
            with stack.http() as client:
                response = client.post("/run", json={"user_input": f"m{len(sent)}", "session_id": session})
            sent.append(response.json()["turn_id"])
            return _saves_done_by(alpha) > 0 and _saves_done_by(beta) > 0

        wait_until(both_consumed, 60, interval=0.05, what="both workers to store turns")
        wait_until(lambda: len(stack.stored_turns(session)) == len(sent), 30, what="every turn to be stored")
        status, body = health(stack)
    finally:
        stack.stop()
    assert status == 200, body
    consumers = body["checks"]["workers"]["data"]
    assert [name.split("@")[0] for name in consumers["database"]] == ["alpha", "beta"]
    assert [name.split("@")[0] for name in consumers["workflow"]] == ["beta"]


def test_the_api_with_two_uvicorn_workers_serves_run_and_history_and_reports_all_their_metrics(
    sqlite_url: str, redis_target: RedisTarget, log_dir: Path
) -> None:
    stack = make_stack("api-workers", redis_target, sqlite_url, log_dir, API_WORKERS="2")
    try:
        stack.start_worker("-c", "1")
        stack.call("celery_tasks.init_database_task", timeout=60)
        api = stack.start_api()
        session = f"uv-{uuid.uuid4()}"
        runs = 0

        def served_by_both() -> bool:
            nonlocal runs
            # A new connection each time, so the kernel may hand it to either process.
            with stack.http(headers={"Connection": "close"}) as client:
                assert client.post("/run", json={"user_input": f"r{runs}", "session_id": session}).status_code == 200
                runs += 1
                assert client.get("/history", params={"session_id": session}).status_code == 200
            serving = set(re.findall(r" (SpawnProcess-\d+) uvicorn\.access .*\"POST /run ", api.log()))
            return len(serving) >= 2

        wait_until(served_by_both, 90, interval=0.05, what="both API processes to serve /run")
        with stack.http() as client:
            history = client.get("/history", params={"session_id": session, "limit": 1000}).json()
            samples = parse_metrics(client.get("/metrics").text)
    finally:
        stack.stop()
    assert history["count"] == runs
    # Whichever process answered the scrape, it reports the requests both processes served.
    assert value(samples, "convoflow_http_requests_total", method="POST", route="/run", status="200") == runs
    assert value(samples, "convoflow_turns_answered_total") == runs


@pytest.fixture
def rabbit_stack(run_id: str, sqlite_url: str, redis_target: RedisTarget, log_dir: Path) -> Iterator[Stack]:
    with private_vhost(f"h{run_id}") as broker_url:
        stack = make_stack("rabbit-health", redis_target, sqlite_url, log_dir, CELERY_BROKER_URL=broker_url)
        try:
            yield stack
        finally:
            stack.stop()


def test_rabbitmq_end_to_end_with_queue_depth_read_over_amqp(rabbit_stack: Stack) -> None:
    rabbit_stack.start_api()
    session = f"amqp-depth-{uuid.uuid4()}"
    with rabbit_stack.http() as client:
        turn_ids = [
            client.post("/run", json={"user_input": f"q{i}", "session_id": session}).json()["turn_id"] for i in range(3)
        ]
    status, body = health(rabbit_stack)
    assert status == 503
    assert not body["checks"]["workers"]["ok"]
    queue = body["checks"]["queues"]["data"]["database"]
    assert queue == {"depth": 3, "oldest_age_seconds": None, "age_known": False}
    assert "age unknown on this broker" in body["checks"]["queues"]["detail"]
    assert body["checks"]["persistence"]["data"]["pending_turns"] == 3

    rabbit_stack.start_worker("-c", "1")
    rabbit_stack.call("celery_tasks.init_database_task", timeout=60)
    wait_until(lambda: health(rabbit_stack)[0] == 200, 60, interval=0.5, what="/health to answer 200")
    status, body = health(rabbit_stack)
    assert body["checks"]["queues"]["data"]["database"]["depth"] == 0
    assert body["checks"]["broker"]["ok"] and "amqp://" in rabbit_stack.processes[-1].log()
    assert {turn["turn_id"] for turn in rabbit_stack.stored_turns(session)} == set(turn_ids)
