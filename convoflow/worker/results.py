"""Task results in Redis with fewer round trips: many at once for batched saves, one write for reads.

`RedisResultBackend` is Celery's Redis result backend (chosen for a redis:// or rediss:// result URL by
`use_result_backend`) with two changes:

- Before storing any state Celery reads the task's key, so that a task delivered twice never overwrites a
  SUCCESS; a read task (a class attribute `result_precheck = False`: history, sessions, the database check) does
  nothing a second delivery could undo, so its SUCCESS is written without that read: one round trip instead of
  two on the path of every history page. It is also kept for `READ_RESULT_EXPIRES` (the Celery setting of that
  name; READ_RESULT_EXPIRES in .env), not `result_expires`: its caller takes it at once, and a day of history pages
  (16 KB each for 50 turns) would fill Redis under a steady read load. So are a read's other final states
  (FAILURE; REVOKED when it expired in the queue before a worker took it), after Celery's check.
- Celery publishes a result on a channel named after the task's key, so a waiting sender subscribes and
  unsubscribes once per task. A sender that names one of our reply channels in the message's `reply_to`
  (an API process listens on one for its whole life) gets a finished task's state published there instead
  (for a read: instead of on the task's channel; for any other task: as well).

Every other task and state is stored as Celery stores it.
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
# The Celery setting that holds how long a read task's SUCCESS is kept (seconds; unset: `result_expires`).
READ_RESULT_EXPIRES = "read_result_expires"
# What a reply channel's name starts with (after the key prefix); a message's reply_to that does not is Celery's.
REPLY_PREFIX = "convoflow-replies:"


def channel_named(app: Celery, reply_to: str) -> str:
    """The Redis channel of a reply channel's name: the result keys' prefix applies to it too."""
    options = app.conf.result_backend_transport_options or {}
    return f"{options.get('global_keyprefix') or ''}{reply_to}"


def reply_channel(app: Celery, reply_to: object) -> str | None:
    """The channel a finished task's state is published on for its sender, or None when `reply_to` names none."""
    if not isinstance(reply_to, str) or not reply_to.startswith(REPLY_PREFIX):
        return None
    return channel_named(app, reply_to)


def use_result_backend(app: Celery) -> None:
    """Resolve redis:// and rediss:// result URLs to RedisResultBackend for `app`.

    Through the loader's backend aliases, so the `result_backend` setting keeps the plain URL: Celery masks the
    password of a URL it can parse when it shows its configuration (Flower, `celery inspect conf`), and a class
    path in front of the URL would defeat that.
    """
    loader: Any = app.loader
    loader.override_backends = {**loader.override_backends, "redis": BACKEND, "rediss": BACKEND}


class RedisResultBackend(RedisBackend):  # type: ignore[misc]
    """Celery's Redis result backend; a read task's SUCCESS is written without first reading the key, and a finished
    task's state goes to the reply channel its message names."""

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
        channel = reply_channel(this.app, getattr(request, "reply_to", None)) if state in states.READY_STATES else None
        task = this.app.tasks.get(getattr(request, "task", None) or "")
        read = not getattr(task, "result_precheck", True)
        read_expires = this.app.conf.get(READ_RESULT_EXPIRES) if read else None
        if read and state == states.SUCCESS:
            key = this.get_key_for_task(task_id)
            this.ensure(
                self._set_and_publish,
                (
                    key,
                    self._encoded(task_id, result, state, None, request),
                    channel or key,
                    read_expires or this.expires,
                ),
            )
            return result
        stored = celery_backend._store_result(task_id, result, state, traceback=traceback, request=request, **kwargs)
        if read_expires and state in states.READY_STATES:
            # A read's other final states (REVOKED when it expired in the queue, FAILURE) are kept as briefly.
            this.ensure(this.client.expire, (this.get_key_for_task(task_id), read_expires))
        if channel is not None:
            this.ensure(this.client.publish, (channel, self._encoded(task_id, result, state, traceback, request)))
        return stored

    def _encoded(self, task_id: str, result: Any, state: str, traceback: Any, request: Any) -> Any:
        """The value Celery stores for this state (its meta, with the task id)."""
        this: Any = self
        meta = this._get_result_meta(result=result, state=state, traceback=traceback, request=request)
        meta["task_id"] = bytes_to_str(task_id)
        return this.encode(meta)

    def _set_and_publish(self, key: Any, value: Any, channel: Any, expires: int | None) -> None:
        """Celery's write of a result (the key, kept `expires` seconds or forever, then the notice) with the notice
        on `channel`."""
        this: Any = self
        with this.client.pipeline() as pipe:
            if expires:
                pipe.setex(key, expires, value)
            else:
                pipe.set(key, value)
            pipe.publish(channel, value)
            pipe.execute()
