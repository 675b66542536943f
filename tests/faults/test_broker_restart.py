"""Guarantee 3: Redis (AOF) killed and restarted under load: every 200 is stored once, the rest are JSON 503s."""

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
from tests.utils.load import BackgroundLoad
from tests.utils.processes import wait_until
from tests.utils.services import RedisServer, RedisTarget, running_private_redis

pytestmark = pytest.mark.faults


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
