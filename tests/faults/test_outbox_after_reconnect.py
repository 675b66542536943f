"""The outbox keeps being swept after the worker lost and regained its broker (the outage it exists for)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import make_stack
from tests.utils.conversations import leave_in_outbox
from tests.utils.processes import wait_until
from tests.utils.services import RedisServer, RedisTarget, running_private_redis

pytestmark = pytest.mark.faults


@pytest.fixture
def restartable_redis() -> Iterator[RedisServer]:
    with running_private_redis(appendonly=True) as server:
        yield server


def test_a_turn_left_in_the_outbox_after_a_broker_restart_is_still_stored(
    restartable_redis: RedisServer, postgres_url: str, log_dir: Path
) -> None:
    target = RedisTarget("127.0.0.1", restartable_redis.port, restartable_redis)
    stack = make_stack(
        "outbox-reconnect", target, postgres_url, log_dir, OUTBOX_REDELIVER_AFTER="5", OUTBOX_SWEEP_INTERVAL="0.5"
    )
    session = f"outbox-{uuid.uuid4()}"
    try:
        worker = stack.start_worker("-c", "1")
        stack.call("celery_tasks.init_database_task", timeout=60)
        restartable_redis.kill()
        time.sleep(2)
        restartable_redis.start()
        wait_until(lambda: worker.log().count("Connected to redis") >= 2, 60, what="the worker to reconnect")

        # A turn the API answered and wrote to the outbox, whose save message was then lost with the broker.
        turn = leave_in_outbox(stack, session, "before the outage", due=time.time() - 60)

        wait_until(lambda: len(stack.stored_turns(session)) == 1, 60, interval=0.5, what="the outbox to be swept")
        assert [item["turn_id"] for item in stack.stored_turns(session)] == [turn["turn_id"]]
    finally:
        stack.stop()
