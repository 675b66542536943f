"""Guarantee 1: a worker SIGKILLed with turns in flight loses none of them; a new worker stores each once."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import redis

from tests.conftest import make_stack
from tests.faults.conftest import record_fault
from tests.utils.load import BackgroundLoad
from tests.utils.processes import wait_until
from tests.utils.services import RedisTarget

pytestmark = pytest.mark.faults


def test_a_killed_worker_loses_no_acknowledged_turn(
    postgres_url: str, redis_target: RedisTarget, log_dir: Path
) -> None:
    # A slow batch timer keeps hundreds of saves prefetched and unacknowledged when the kill comes.
    slow_batches = {"SAVE_BATCH_INTERVAL": "2", "SAVE_BATCH_SIZE": "5000"}
    stack = make_stack("kill", redis_target, postgres_url, log_dir, **slow_batches)
    session = f"kill-{uuid.uuid4()}"
    client = redis.Redis(host=redis_target.host, port=redis_target.port)
    try:
        first = stack.start_worker("-c", "2")
        stack.call("celery_tasks.init_database_task", timeout=60)
        stack.start_api()
        load = BackgroundLoad(stack.api_url, session, 400, concurrency=8, label="kill")
        wait_until(lambda: len(load.result.acknowledged) >= 200, 120, what="200 acknowledged turns")
        in_flight = client.hlen(f"{stack.prefix}unacked")
        first.kill()
        result = load.join()
        stack.start_worker("-c", "2", name="worker-after-kill")
        wait_until(
            lambda: len(stack.stored_turns(session)) >= len(result.acknowledged), 60, interval=0.5, what="recovery"
        )
        stored = [turn["turn_id"] for turn in stack.stored_turns(session)]
    finally:
        client.close()
        stack.stop()
    row = record_fault("worker SIGKILL", result, stored)
    assert in_flight > 0, "the kill must happen while saves are in flight"
    assert row["lost"] == 0 and row["duplicated"] == 0
    assert row["5xx"] == 0 and row["acknowledged"] == row["sent"] == 400
