"""Task results in Redis with fewer round trips: many at once for batched saves, one write for reads.

`RedisResultBackend` is Celery's Redis result backend (chosen for a redis:// or rediss:// result URL by
`use_result_backend`) with one change. Before storing any state Celery reads the task's key, so that a task
delivered twice never overwrites a SUCCESS; a read task (a class attribute `result_precheck = False`: history,
sessions, the database check) does nothing a second delivery could undo, so its SUCCESS is written without that
read: one round trip instead of two on the path of every history page. Every other task and state is stored as
Celery stores it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from celery import Celery, states
from celery.backends.redis import RedisBackend
from kombu.utils.encoding import bytes_to_str

# KEYS: result keys. ARGV: seconds to keep them (0: forever), then one value per key.
_STORE_AND_PUBLISH = """
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  if ttl > 0 then redis.call('SETEX', key, ttl, ARGV[i + 1]) else redis.call('SET', key, ARGV[i + 1]) end
  redis.call('PUBLISH', key, ARGV[i + 1])
end
return #KEYS
"""


def store_successes(app: Celery, results: Mapping[str, dict[str, Any]]) -> None:
    """Record SUCCESS for each task id, as Celery's backend would (same key, value and pub/sub notice)."""
    if not results:
        return
    backend: Any = app.backend
    if not hasattr(backend, "client") or not hasattr(backend, "get_key_for_task"):
        for task_id, result in results.items():
            backend.mark_as_done(task_id, result)
        return
    keys: list[Any] = []
    values: list[Any] = []
    # Celery's meta for a finished task without a request is the same for the whole batch but for the result
    # and the task id; building it once per batch saves a configuration lookup and a timestamp per task.
    template = backend._get_result_meta(result=None, state=states.SUCCESS, traceback=None, request=None)
    for task_id, result in results.items():
        keys.append(backend.get_key_for_task(task_id))
        values.append(backend.encode({**template, "result": result, "task_id": task_id}))
    # One command for the whole batch: a pipeline of two commands per task costs more to build than to run.
    backend.client.register_script(_STORE_AND_PUBLISH)(keys=keys, args=[int(backend.expires or 0), *values])


BACKEND = f"{__name__}:RedisResultBackend"


def use_result_backend(app: Celery) -> None:
    """Resolve redis:// and rediss:// result URLs to RedisResultBackend for `app`.

    Through the loader's backend aliases, so the `result_backend` setting keeps the plain URL: Celery masks the
    password of a URL it can parse when it shows its configuration (Flower, `celery inspect conf`), and a class
    path in front of the URL would defeat that.
    """
    loader: Any = app.loader
    loader.override_backends = {**loader.override_backends, "redis": BACKEND, "rediss": BACKEND}


class RedisResultBackend(RedisBackend):  # type: ignore[misc]
    """Celery's Redis result backend; a read task's SUCCESS is written without first reading the key."""

    def _store_result(
        self,
        task_id: str,
        result: Any,
        state: str,
        traceback: Any = None,
        request: Any = None,
        **kwargs: Any,
    ) -> Any:
        celery_backend: Any = super()  # celery-types does not describe the key-value backend's internals
        this: Any = self
        task = this.app.tasks.get(getattr(request, "task", None) or "")
        if state != states.SUCCESS or getattr(task, "result_precheck", True):
            return celery_backend._store_result(task_id, result, state, traceback=traceback, request=request, **kwargs)
        meta = this._get_result_meta(result=result, state=state, traceback=traceback, request=request)
        meta["task_id"] = bytes_to_str(task_id)
        this._set_with_state(this.get_key_for_task(task_id), this.encode(meta), state)
        return result
