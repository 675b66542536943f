"""The API and every worker process freeze their startup heap, so full garbage collections stay short."""

from __future__ import annotations

import gc
import re
from pathlib import Path

from convoflow.heap import freeze_startup_heap
from tests.conftest import make_stack
from tests.utils.services import RedisTarget
from tests.utils.stack import Stack, running

FROZEN = re.compile(r"(\d+) startup objects frozen out of the garbage collector( \(pool process\))?")


def test_freezing_moves_the_tracked_objects_out_of_the_collectors_generations() -> None:
    try:
        frozen = freeze_startup_heap()
        # At least what was frozen: another thread of the test process may freeze or allocate in between.
        assert gc.get_freeze_count() >= frozen > 10_000
        assert sum(gc.get_count()) < 100  # nothing left for the next collection to scan but new objects
    finally:
        gc.unfreeze()


def _frozen(log: str) -> list[tuple[int, bool]]:
    """(objects frozen, whether a pool process said it) for each line a process logged."""
    return [(int(match.group(1)), bool(match.group(2))) for match in FROZEN.finditer(log)]


def test_api_and_worker_processes_freeze_their_startup_heap(sqlite_stack: Stack) -> None:
    logs = {process.name: process.log() for process in sqlite_stack.processes}
    api = next(log for name, log in logs.items() if name.endswith("-api"))
    worker = next(log for name, log in logs.items() if name.endswith("-worker"))

    api_counts = [count for count, _pool in _frozen(api)]
    assert api_counts and min(api_counts) > 10_000
    # The default pool is threads: one process, which freezes once.
    assert [(count > 10_000, pool) for count, pool in _frozen(worker)] == [(True, False)]


def test_prefork_pool_processes_freeze_theirs_too(sqlite_url: str, redis_target: RedisTarget, log_dir: Path) -> None:
    stack = make_stack("heap-prefork", redis_target, sqlite_url, log_dir)
    with running(stack, api=False, worker_args=("-P", "prefork", "-c", "2")):
        lines = _frozen(stack.processes[0].log())
    # The main process before forking, then each of the two pool processes.
    assert [pool for _count, pool in lines].count(False) == 1
    assert [pool for _count, pool in lines].count(True) >= 2
    assert all(count > 10_000 for count, _pool in lines)
