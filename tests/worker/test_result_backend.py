"""The result backend against the real Redis: reads store their result in one write, other tasks as Celery does."""

from __future__ import annotations

import json
import uuid
from typing import Any

import redis
from celery import Celery, states
from celery.app.task import Context
from celery.app.utils import filter_hidden_settings

from convoflow.tasks import names
from convoflow.worker.results import RedisResultBackend, use_result_backend
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


def test_the_app_uses_the_backend_for_redis_urls_and_its_settings_keep_the_plain_url(sqlite_stack: Stack) -> None:
    assert isinstance(sqlite_stack.app.backend, RedisResultBackend)
    assert sqlite_stack.app.conf.result_backend == sqlite_stack.settings.redis_url
    for url in ("rediss://:s3cret@r:6380/1?ssl_cert_reqs=required", "redis://:s3cret@r:6379/1"):
        app = Celery("result-url", set_as_current=False)
        app.conf.update(result_backend=url)
        use_result_backend(app)
        assert type(app.backend) is RedisResultBackend
        # What Flower and `celery inspect conf` show: the password masked, as for any URL Celery can parse.
        shown = filter_hidden_settings(dict(app.conf.table()))["result_backend"]
        assert "s3cret" not in shown and shown.startswith(url.split(":")[0] + "://:") and "@r:63" in shown


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


def test_a_reads_other_final_states_are_kept_as_briefly_as_its_pages(sqlite_stack: Stack) -> None:
    backend = sqlite_stack.app.backend
    settings = sqlite_stack.settings
    expired, failed, other = (str(uuid.uuid4()) for _ in range(3))
    # What a worker stores for a read that expired in the queue, for a read that failed, and for any other task.
    backend.mark_as_revoked(expired, "expired", request=Context(task=names.GET_HISTORY))
    backend.mark_as_failure(failed, ValueError("no database"), request=Context(task=names.LIST_SESSIONS))
    backend.mark_as_revoked(other, "expired", request=Context(task=names.DELETE_HISTORY))
    client = redis.Redis.from_url(settings.redis_url)
    try:
        ttls = {task_id: client.ttl(_key(sqlite_stack, task_id)) for task_id in (expired, failed, other)}
    finally:
        client.close()
    assert (_stored(sqlite_stack, expired)["status"], _stored(sqlite_stack, failed)["status"]) == ("REVOKED", "FAILURE")
    assert 0 < ttls[expired] <= settings.read_result_expires and 0 < ttls[failed] <= settings.read_result_expires
    assert settings.result_expires - 60 < ttls[other] <= settings.result_expires
