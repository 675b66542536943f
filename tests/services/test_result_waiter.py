"""ResultWaiter against the real Redis result backend: published results, and results it did not hear published."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from convoflow.dispatch.results import ResultWaiter
from tests.utils.stack import Stack

pytestmark = pytest.mark.anyio


@pytest.fixture
async def waiter(sqlite_stack: Stack) -> AsyncIterator[ResultWaiter]:
    client = aioredis.Redis.from_url(sqlite_stack.settings.redis_url)
    results = ResultWaiter(sqlite_stack.app, client)
    try:
        yield results
    finally:
        await results.close()
        await client.aclose()


async def test_a_result_published_while_waiting_arrives(waiter: ResultWaiter, sqlite_stack: Stack) -> None:
    task_id = str(uuid.uuid4())
    future = await waiter.expect(task_id)
    sqlite_stack.app.backend.mark_as_done(task_id, {"answer": 42})  # SET + PUBLISH, as a worker does

    meta = await waiter.wait(task_id, future, timeout=10)

    assert (meta["status"], meta["result"]) == ("SUCCESS", {"answer": 42})


async def test_a_result_stored_before_the_subscription_is_read_from_its_key(
    waiter: ResultWaiter, sqlite_stack: Stack
) -> None:
    task_id = str(uuid.uuid4())
    # Stored and published before anyone listened: only the key holds it, the notice is gone.
    sqlite_stack.app.backend.mark_as_done(task_id, {"answer": "early"})
    future = await waiter.expect(task_id)

    meta = await waiter.wait(task_id, future, timeout=10)

    assert (meta["status"], meta["result"]) == ("SUCCESS", {"answer": "early"})


async def test_no_result_times_out(waiter: ResultWaiter) -> None:
    task_id = str(uuid.uuid4())
    future = await waiter.expect(task_id)

    with pytest.raises(TimeoutError):
        await waiter.wait(task_id, future, timeout=0.3)
