"""The result backend against the real Redis: reads store their result in one write, other tasks as Celery does."""

from __future__ import annotations

import json
import uuid
from typing import Any

import redis
from celery import states
from celery.app.task import Context

from convoflow.tasks import names
from convoflow.worker.results import RedisResultBackend, result_backend
from tests.utils.stack import Stack


def _key(stack: Stack, task_id: str) -> str:
    backend: Any = stack.app.backend
    return str(backend.get_key_for_task(task_id).decode())


def _stored(stack: Stack, task_id: str) -> dict[str, object]:
    client = redis.Redis.from_url(stack.settings.redis_url)
    try:
        raw = client.get(_key(stack, task_id))
    finally:
        client.close()
    assert raw is not None
    return dict(json.loads(raw))


def test_the_app_uses_the_backend_for_a_redis_url_and_leaves_other_urls_alone(sqlite_stack: Stack) -> None:
    assert isinstance(sqlite_stack.app.backend, RedisResultBackend)
    assert result_backend("redis://r:6379/1") == "convoflow.worker.results:RedisResultBackend+redis://r:6379/1"
    assert result_backend("rpc://") == "rpc://"
    assert result_backend("db+postgresql://h/db") == "db+postgresql://h/db"


def test_a_read_stores_its_result_without_reading_the_key_first(sqlite_stack: Stack) -> None:
    backend = sqlite_stack.app.backend
    task_id = str(uuid.uuid4())
    backend.store_result(task_id, {"count": 1}, states.SUCCESS)
    client = redis.Redis.from_url(sqlite_stack.settings.redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
    pubsub.subscribe(_key(sqlite_stack, task_id))
    try:
        # Celery's check would keep the first SUCCESS: only a write that skips it replaces it.
        backend.store_result(task_id, {"count": 2}, states.SUCCESS, request=Context(task=names.GET_HISTORY))

        assert _stored(sqlite_stack, task_id)["result"] == {"count": 2}
        message = None
        for _ in range(50):
            message = pubsub.get_message(timeout=0.1)
            if message is not None:
                break
        assert message is not None, "the result was not published"
        assert json.loads(message["data"])["result"] == {"count": 2}
    finally:
        pubsub.close()
        client.close()


def test_other_tasks_keep_celerys_check_and_never_overwrite_a_success(sqlite_stack: Stack) -> None:
    backend = sqlite_stack.app.backend
    task_id = str(uuid.uuid4())
    backend.store_result(task_id, {"stored": True}, states.SUCCESS, request=Context(task=names.DELETE_HISTORY))

    backend.store_result(task_id, {"stored": "again"}, states.SUCCESS, request=Context(task=names.DELETE_HISTORY))
    backend.store_result(task_id, None, states.STARTED, request=Context(task=names.GET_HISTORY))

    stored = _stored(sqlite_stack, task_id)
    assert (stored["status"], stored["result"]) == ("SUCCESS", {"stored": True})
