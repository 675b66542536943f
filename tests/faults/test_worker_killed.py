"""Guarantee 1: a worker SIGKILLed with turns in flight loses none of them; a new worker stores each once."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, text

from tests.conftest import make_stack
from tests.faults.conftest import record_fault, start_worker_and_api, stored_after_catch_up
from tests.utils.load import BackgroundLoad
from tests.utils.processes import wait_until
from tests.utils.services import RedisTarget

pytestmark = pytest.mark.faults


def test_a_killed_worker_loses_no_acknowledged_turn(
    postgres_url: str, redis_target: RedisTarget, log_dir: Path
) -> None:
    stack = make_stack("kill", redis_target, postgres_url, log_dir)
    session = f"kill-{uuid.uuid4()}"
    client = redis.Redis(host=redis_target.host, port=redis_target.port)
    blocker = create_engine(postgres_url).connect()
    try:
        first = start_worker_and_api(stack)
        # Hold the table so that the worker's saves are stuck mid-transaction: in flight when the kill comes.
        blocker.execute(text("LOCK TABLE conversation_turns IN EXCLUSIVE MODE"))
        load = BackgroundLoad(stack.api_url, session, 400, concurrency=8, label="kill")
        wait_until(lambda: len(load.result.acknowledged) >= 200, 120, what="200 acknowledged turns")
        wait_until(lambda: client.hlen(f"{stack.prefix}unacked") > 0, 30, what="saves in flight")
        in_flight = client.hlen(f"{stack.prefix}unacked")
        first.kill()
        blocker.rollback()
        result = load.join()
        stack.start_worker("-c", "2", name="worker-after-kill")
        stored = stored_after_catch_up(stack, session, len(result.acknowledged), 60, interval=0.5, what="recovery")
    finally:
        blocker.close()
        client.close()
        stack.stop()
    row = record_fault("worker SIGKILL", result, stored)
    assert in_flight > 0
    assert row["lost"] == 0 and row["duplicated"] == 0
    assert row["5xx"] == 0 and row["acknowledged"] == row["sent"] == 400
