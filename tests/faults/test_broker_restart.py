"""Guarantee 3: Redis (AOF) killed and restarted under load: every 200 is stored once, the rest are JSON 503s;
once Redis is back, no request fails."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_stack
from tests.faults.conftest import record_fault, start_worker_and_api, stored_after_catch_up
from tests.utils.conversations import post_turns_at_once
from tests.utils.load import BackgroundLoad
from tests.utils.processes import wait_until
from tests.utils.services import RedisServer, RedisTarget, running_private_redis

pytestmark = pytest.mark.faults

RESTART_BURST = 16


@pytest.fixture
def aof_redis() -> Iterator[RedisServer]:
    with running_private_redis(appendonly=True) as server:
        yield server


def test_broker_restart_loses_no_acknowledged_turn(aof_redis: RedisServer, postgres_url: str, log_dir: Path) -> None:
    target = RedisTarget("127.0.0.1", aof_redis.port, aof_redis)
    stack = make_stack("broker-restart", target, postgres_url, log_dir)
    session = f"broker-{uuid.uuid4()}"
    try:
        start_worker_and_api(stack)
        load = BackgroundLoad(stack.api_url, session, 400, concurrency=4, pause=0.05, label="broker")
        wait_until(lambda: len(load.result.acknowledged) >= 100, 60, what="load before the restart")
        aof_redis.kill()
        time.sleep(3)
        aof_redis.start()
        result = load.join()
        with httpx.Client(base_url=stack.api_url, timeout=30) as client:
            wait_until(
                lambda: (
                    client.post("/run", json={"user_input": "after", "session_id": f"{session}-after"}).status_code
                    == 200
                ),
                60,
                interval=0.5,
                what="the API to recover by itself",
            )
        stored = stored_after_catch_up(stack, session, len(result.acknowledged))
    finally:
        stack.stop()
    row = record_fault("Redis broker kill -9 + restart", result, stored)
    assert row["lost"] == 0 and row["duplicated"] == 0
    assert set(result.statuses) <= {"200", "503"}, result.statuses
    assert row["503"] > 0, "the outage must have been felt"
    for body in result.bodies_5xx:
        assert json.loads(body)["error"] in ("broker_unavailable", "redis_unavailable")


def test_no_request_fails_once_redis_is_back(aof_redis: RedisServer, postgres_url: str, log_dir: Path) -> None:
    """The API's pooled Redis connections died with the server; the first request on each must not fail."""
    stack = make_stack("redis-back", RedisTarget("127.0.0.1", aof_redis.port, aof_redis), postgres_url, log_dir)
    session = f"back-{uuid.uuid4()}"
    try:
        start_worker_and_api(stack)
        with httpx.Client(base_url=stack.api_url, timeout=30) as client:
            # Leaves the API's Redis pool with about as many connections.
            before = post_turns_at_once(stack.api_url, session, RESTART_BURST)
            assert [response.status_code for response in before] == [200] * RESTART_BURST
            aof_redis.kill()
            aof_redis.start()
            after = post_turns_at_once(stack.api_url, session, RESTART_BURST)
            assert [response.status_code for response in after] == [200] * RESTART_BURST, [
                response.text for response in after if response.status_code != 200
            ]
            task = client.get(f"/task/{after[0].json()['task_id']}")
            assert task.status_code == 200, task.text
            # Through a worker, which reconnects by itself meanwhile, and the API's result listener.
            history = client.get("/history", params={"session_id": session, "limit": 100})
            assert history.status_code == 200, history.text
            assert history.json()["count"] == 2 * RESTART_BURST
    finally:
        stack.stop()
