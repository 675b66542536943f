"""The API and every worker process freeze their startup heap, so full garbage collections stay short."""

from __future__ import annotations

import gc
import re

from convoflow.heap import freeze_startup_heap
from tests.utils.stack import Stack

FROZEN = re.compile(r"(\d+) startup objects frozen out of the garbage collector( \(pool process\))?")


def test_freezing_moves_the_tracked_objects_out_of_the_collectors_generations() -> None:
    try:
        frozen = freeze_startup_heap()
        # At least what was frozen: another thread of the test process may freeze or allocate in between.
        assert gc.get_freeze_count() >= frozen > 10_000
        assert sum(gc.get_count()) < 100  # nothing left for the next collection to scan but new objects
    finally:
        gc.unfreeze()


def test_api_and_worker_processes_freeze_their_startup_heap(sqlite_stack: Stack) -> None:
    logs = {process.name: process.log() for process in sqlite_stack.processes}
    api = next(log for name, log in logs.items() if name.endswith("-api"))
    worker = next(log for name, log in logs.items() if name.endswith("-worker"))

    api_counts = [int(match.group(1)) for match in FROZEN.finditer(api)]
    worker_lines = [(int(match.group(1)), bool(match.group(2))) for match in FROZEN.finditer(worker)]

    assert api_counts and min(api_counts) > 10_000
    # The main process before forking, then each of the two pool processes (-c 2).
    assert [pool for _count, pool in worker_lines].count(False) == 1
    assert [pool for _count, pool in worker_lines].count(True) >= 2
    assert all(count > 10_000 for count, _pool in worker_lines)
