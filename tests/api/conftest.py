"""Stacks the API tests share beyond the default one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import make_stack
from tests.utils.services import RedisTarget
from tests.utils.stack import Stack

# Slow enough to act mid-answer: the offline model streams its ~12 words over this many milliseconds.
SLOW_MODEL_MS = 4000
PING_SECONDS = 0.05


@pytest.fixture(scope="module")
def split_pools_stack(sqlite_url: str, redis_target: RedisTarget, log_dir: Path) -> Iterator[Stack]:
    """The production layout: a prefork worker on `database`, a thread-pool worker on `workflow`, a slow model (whose
    streams get keep-alive comments between their tokens)."""
    stack = make_stack(
        "split",
        redis_target,
        sqlite_url,
        log_dir,
        OFFLINE_LATENCY_MS=str(SLOW_MODEL_MS),
        STREAM_PING_SECONDS=str(PING_SECONDS),
    )
    try:
        stack.start_worker("-Q", "database", "-P", "prefork", "-c", "1", "-n", "database@%h", name="database-worker")
        stack.start_worker(
            "-Q", "workflow", "-P", "threads", "-c", "8", "--prefetch-multiplier", "1", "-n", "workflow@%h",
            name="workflow-worker",
        )  # fmt: skip
        stack.call("celery_tasks.init_database_task", timeout=60)
        stack.start_api()
        yield stack
    finally:
        stack.stop()
