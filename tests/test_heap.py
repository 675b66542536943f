"""The API and every worker process freeze their startup heap, so full garbage collections stay short."""

from __future__ import annotations

import asyncio
import gc
import re
from pathlib import Path

import httpx

from convoflow.heap import API_YOUNG_COLLECTION_EVERY, collect_young_less_often, freeze_startup_heap
from tests.conftest import make_stack
from tests.utils.services import RedisTarget
from tests.utils.stack import Stack, running

YOUNG_COLLECTIONS = re.compile(r'^python_gc_collections_total\{generation="0"\} ([\d.e+]+)$', re.MULTILINE)
FROZEN = re.compile(r"(\d+) startup objects frozen out of the garbage collector( \(pool process\))?")


def test_freezing_moves_the_tracked_objects_out_of_the_collectors_generations() -> None:
    try:
        frozen = freeze_startup_heap()
        # Not an exact count: another thread of the test process may free a frozen object (its count then drops by
        # one; seen once in CI) or freeze more in between.
        assert frozen > 10_000
        assert gc.get_freeze_count() > 10_000
        assert sum(gc.get_count()) < 100  # nothing left for the next collection to scan but new objects
    finally:
        gc.unfreeze()


def test_young_collections_can_be_made_rarer_without_touching_the_older_generations() -> None:
    before = gc.get_threshold()
    try:
        assert collect_young_less_often(12_345) == 12_345
        assert gc.get_threshold() == (12_345, before[1], before[2])
    finally:
        gc.set_threshold(*before)


def _young_collections(stack: Stack) -> float:
    with stack.http() as client:
        text = client.get("/metrics").text
    match = YOUNG_COLLECTIONS.search(text)
    assert match, "the API's /metrics has no python_gc_collections_total for generation 0"
    return float(match.group(1))


def test_the_api_collects_its_young_generation_rarely(sqlite_stack: Stack) -> None:
    # With Python's default (a young collection every 700 new objects), 400 turns with 64 in flight cost some 50
    # young collections here (one request after another cost only a few: each request's objects are freed before
    # the next one starts). The API raises the threshold so that requests in flight are not scanned and promoted.
    before = _young_collections(sqlite_stack)

    async def turns() -> list[int]:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(base_url=sqlite_stack.api_url, timeout=60, limits=limits) as client:
            requests = [
                client.post("/run", json={"user_input": f"gc {index}", "session_id": f"gc-young-{index % 8}"})
                for index in range(400)
            ]
            return [response.status_code for response in await asyncio.gather(*requests)]

    assert asyncio.run(turns()) == [200] * 400
    assert _young_collections(sqlite_stack) - before <= 10
    assert f"young collections every {API_YOUNG_COLLECTION_EVERY} allocations" in _log(sqlite_stack, "-api")


def _log(stack: Stack, suffix: str) -> str:
    """The log of the stack's process whose name ends with `suffix` ("-api", "-worker")."""
    return next(process.log() for process in stack.processes if process.name.endswith(suffix))


def _frozen(log: str) -> list[tuple[int, bool]]:
    """(objects frozen, whether a pool process said it) for each line a process logged."""
    return [(int(match.group(1)), bool(match.group(2))) for match in FROZEN.finditer(log)]


def test_api_and_worker_processes_freeze_their_startup_heap(sqlite_stack: Stack) -> None:
    api, worker = _log(sqlite_stack, "-api"), _log(sqlite_stack, "-worker")

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
