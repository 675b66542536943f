"""ResultWaiter against the real Redis result backend: results on the process's reply channel, on a task's own
channel (Celery's way), and results it did not hear published."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as aioredis
from celery import states
from celery.app.task import Context

from convoflow.dispatch.gateway import TaskGateway
from convoflow.dispatch.results import ResultWaiter
from convoflow.errors import BrokerUnavailable
from convoflow.tasks import names
from convoflow.worker.app import create_celery_app
from convoflow.worker.results import channel_named
from tests.utils.stack import Stack

pytestmark = pytest.mark.anyio

# Long enough that a result heard only through the fallback would be noticed (counted), short of the wait's timeout.
NO_FALLBACK = 30.0


@pytest.fixture
async def client(sqlite_stack: Stack) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(sqlite_stack.settings.redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def waiters(client: aioredis.Redis) -> AsyncIterator[list[ResultWaiter]]:
    """Every waiter a test puts here is closed after it (and before `client`, which they use)."""
    made: list[ResultWaiter] = []
    try:
        yield made
    finally:
        for results in made:
            await results.close()


@pytest.fixture
def waiter(sqlite_stack: Stack, client: aioredis.Redis, waiters: list[ResultWaiter]) -> ResultWaiter:
    waiters.append(ResultWaiter(sqlite_stack.app, client))
    return waiters[-1]


@pytest.fixture
def patient_waiter(sqlite_stack: Stack, client: aioredis.Redis, waiters: list[ResultWaiter]) -> ResultWaiter:
    waiters.append(ResultWaiter(sqlite_stack.app, client, fallback_after=NO_FALLBACK))
    return waiters[-1]


async def subscribers(client: aioredis.Redis, channel: str) -> int:
    return int(dict(await client.pubsub_numsub(channel)).get(channel.encode(), 0))


async def until(condition: Callable[[], Awaitable[bool]]) -> None:
    for _ in range(500):
        if await condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition never held")


async def test_a_result_on_the_reply_channel_arrives_without_a_subscription_for_the_task(
    patient_waiter: ResultWaiter, sqlite_stack: Stack, client: aioredis.Redis
) -> None:
    task_id = str(uuid.uuid4())
    future = await patient_waiter.expect(task_id)
    reply_channel = channel_named(sqlite_stack.app, patient_waiter.reply_to)
    await until(lambda: _equals(subscribers(client, reply_channel), 1))
    assert await subscribers(client, patient_waiter.key_for(task_id)) == 0

    # What a worker does with a read whose message names the reply channel: SET the key, PUBLISH on the channel.
    request = Context(task=names.GET_HISTORY, reply_to=patient_waiter.reply_to)
    sqlite_stack.app.backend.store_result(task_id, {"answer": 42}, states.SUCCESS, request=request)
    meta = await patient_waiter.wait(task_id, future, timeout=60)

    assert (meta["status"], meta["result"]) == ("SUCCESS", {"answer": 42})
    assert patient_waiter.fallbacks == 0


async def test_a_result_published_only_on_the_tasks_own_channel_arrives(
    waiter: ResultWaiter, client: aioredis.Redis
) -> None:
    task_id = str(uuid.uuid4())
    key = waiter.key_for(task_id)
    future = await waiter.expect(task_id)
    waiting = asyncio.create_task(waiter.wait(task_id, future, timeout=30))
    # Celery's way (or an older worker's): the notice on the task's channel only, and here no key to read.
    await until(lambda: _equals(subscribers(client, key), 1))
    await client.publish(key, json.dumps({"status": "SUCCESS", "result": "late", "task_id": task_id}))

    meta = await waiting

    assert (meta["status"], meta["result"]) == ("SUCCESS", "late")
    assert waiter.fallbacks == 1
    await until(lambda: _equals(subscribers(client, key), 0))  # and the task's channel is left again


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


async def test_a_worker_answers_reads_and_other_tasks_on_the_senders_reply_channel(
    sqlite_stack: Stack, client: aioredis.Redis
) -> None:
    sqlite_stack.app.set_default()  # the task objects resolve their app at send time: this stack's
    gateway = TaskGateway(sqlite_stack.settings, sqlite_stack.app, client)
    waiter = gateway.results = ResultWaiter(sqlite_stack.app, client, fallback_after=NO_FALLBACK)
    session = f"reply-{uuid.uuid4().hex[:8]}"
    try:
        await waiter.expect("listening")  # the process's subscription, in effect before anything is sent
        await until(lambda: _equals(subscribers(client, channel_named(sqlite_stack.app, waiter.reply_to)), 1))

        page = await gateway.call(names.GET_HISTORY, {"limit": 5, "session_id": session}, kind="history")
        deleted = await gateway.call(names.DELETE_HISTORY, {"session_id": session}, kind="delete")

        assert (page["count"], deleted["deleted"]) == (0, 0)
        assert waiter.fallbacks == 0  # both heard on the reply channel, neither after NO_FALLBACK seconds
    finally:
        await gateway.close()


async def _equals(value: Awaitable[int], expected: int) -> bool:
    return await value == expected


async def test_a_task_that_could_not_be_sent_leaves_nothing_awaited(
    sqlite_stack: Stack, client: aioredis.Redis
) -> None:
    # Results in the stack's Redis, messages to a broker that does not answer (kombu publishes, and fails).
    dead_broker = sqlite_stack.settings.model_copy(update={"celery_broker_url": "amqp://guest:guest@127.0.0.1:1//"})
    app = create_celery_app(dead_broker)
    gateway = TaskGateway(dead_broker, app, client)
    assert gateway.results is not None
    try:
        with pytest.raises(BrokerUnavailable):
            await gateway.call(names.GET_HISTORY, {"limit": 5, "session_id": "never-sent"}, kind="history")
        assert gateway.results.pending == 0
    finally:
        await gateway.close()
        app.close()
        sqlite_stack.app.set_default()  # create_celery_app made the dead-broker app the default
