"""RedisTaskPublisher against the real Redis broker: the message kombu would publish, and a worker that runs it."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from celery import Celery
from celery.result import AsyncResult

from convoflow.dispatch.publisher import RedisTaskPublisher
from convoflow.observability.request_id import TASK_HEADER, bind_request_id, reset_request_id
from convoflow.tasks import names
from convoflow.worker.app import create_celery_app
from tests.utils.stack import Stack

pytestmark = pytest.mark.anyio

PROBE_TASK = "convoflow.tests.probe"
PROBE_QUEUE = "publisher-probe"
# Differ between any two messages: ids, times, and where the message came from.
PER_MESSAGE_HEADERS = {"id", "root_id", "expires", "published_at", "origin"}
PER_MESSAGE_PROPERTIES = {"correlation_id", "delivery_tag", "reply_to"}


@pytest.fixture
def probe_app(sqlite_stack: Stack) -> Iterator[Celery]:
    """The stack's configuration plus a route to a queue no worker consumes."""
    app = create_celery_app(sqlite_stack.settings)
    app.conf.task_routes = {**app.conf.task_routes, PROBE_TASK: {"queue": PROBE_QUEUE}}
    yield app
    app.close()


@pytest.fixture
async def client(sqlite_stack: Stack) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(sqlite_stack.settings.redis_url)
    yield client
    await client.aclose()


def _take(sqlite_stack: Stack, queue: str) -> dict[str, Any]:
    sync = redis.Redis.from_url(sqlite_stack.settings.redis_url)
    try:
        raw = sync.rpop(sqlite_stack.prefix + queue)
        assert isinstance(raw, bytes), f"no message on {queue}"
        return dict(json.loads(raw))
    finally:
        sync.close()


async def test_the_message_is_the_one_kombu_publishes(
    probe_app: Celery, client: aioredis.Redis, sqlite_stack: Stack
) -> None:
    kwargs = {"limit": 50, "session_id": "s-1", "owner": None}
    token = bind_request_id("req-publisher")
    try:
        probe_app.send_task(PROBE_TASK, kwargs=kwargs, task_id=str(uuid.uuid4()), expires=15, kwargsrepr="{sizes}")
        kombu_message = _take(sqlite_stack, PROBE_QUEUE)
        publisher = RedisTaskPublisher(probe_app, client, sqlite_stack.prefix)
        ours_id = str(uuid.uuid4())
        message = publisher.build(PROBE_TASK, kwargs, ours_id, expires=15, kwargsrepr="{sizes}")
        assert message is not None
        await publisher.publish(message)
        ours = _take(sqlite_stack, PROBE_QUEUE)
    finally:
        reset_request_id(token)

    assert {key: value for key, value in ours.items() if key not in ("headers", "properties", "body")} == {
        key: value for key, value in kombu_message.items() if key not in ("headers", "properties", "body")
    }
    assert json.loads(base64.b64decode(ours["body"])) == json.loads(base64.b64decode(kombu_message["body"]))

    def same(message: dict[str, Any], part: str, varying: set[str]) -> dict[str, Any]:
        return {key: value for key, value in message[part].items() if key not in varying}

    assert same(ours, "headers", PER_MESSAGE_HEADERS) == same(kombu_message, "headers", PER_MESSAGE_HEADERS)
    assert ours["headers"]["id"] == ours["headers"]["root_id"] == ours["properties"]["correlation_id"] == ours_id
    assert ours["headers"][TASK_HEADER] == "req-publisher"  # the before_task_publish handlers ran
    assert ours["headers"]["expires"] is not None
    # kombu also copies send_task's `kwargsrepr` option into the properties, which nothing reads.
    kombu_properties = same(kombu_message, "properties", PER_MESSAGE_PROPERTIES | {"kwargsrepr"})
    assert same(ours, "properties", PER_MESSAGE_PROPERTIES) == kombu_properties
    assert ours["properties"]["delivery_tag"] != kombu_message["properties"]["delivery_tag"]


async def test_a_worker_runs_a_pushed_task(sqlite_stack: Stack, client: aioredis.Redis) -> None:
    publisher = RedisTaskPublisher(sqlite_stack.app, client, sqlite_stack.prefix)
    task_id = str(uuid.uuid4())
    message = publisher.build(names.GET_HISTORY, {"limit": 5, "session_id": f"empty-{task_id}"}, task_id, kwargsrepr="")
    assert message is not None

    await publisher.publish(message)

    result: AsyncResult[Any] = AsyncResult(task_id, app=sqlite_stack.app)
    assert result.get(timeout=30) == {"success": True, "count": 0, "history": []}
    assert message.queue == "database"


async def test_an_unreachable_broker_raises(sqlite_stack: Stack) -> None:
    dead = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)
    publisher = RedisTaskPublisher(sqlite_stack.app, dead, sqlite_stack.prefix)
    message = publisher.build(names.GET_HISTORY, {"limit": 1}, str(uuid.uuid4()), kwargsrepr="")
    assert message is not None
    try:
        with pytest.raises(redis.RedisError):
            await publisher.publish(message)
    finally:
        await dead.aclose()
