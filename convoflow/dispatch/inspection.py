"""What the broker holds and who consumes it: depth and oldest-message age per queue, workers per queue."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio
from celery import Celery
from kombu.exceptions import ChannelError

# Set by the before_task_publish handler (convoflow.worker.telemetry) on every message convoflow publishes.
PUBLISHED_AT_HEADER = "published_at"


@dataclass(frozen=True)
class QueueState:
    """One queue: messages waiting, and how long the oldest has waited (None: empty, or the broker cannot say)."""

    name: str
    depth: int
    oldest_age_seconds: float | None
    age_known: bool


def expected_queues(app: Celery) -> list[str]:
    """The task queues this service routes to; each needs at least one consuming worker."""
    return [queue.name for queue in app.conf.task_queues or ()]


def _redis_queue(channel: Any, name: str) -> QueueState:
    # kombu's Redis transport keeps a queue as one list per priority step; producers LPUSH and consumers
    # pop from the tail, so the tail is the oldest message. kombu's client adds the global key prefix to
    # the commands kombu itself uses, which LINDEX is not among: add it here.
    depth = int(channel._size(name))
    published: list[float] = []
    with channel.conn_or_acquire() as client:
        prefixed_by_client = "LINDEX" in getattr(client, "PREFIXED_SIMPLE_COMMANDS", ())
        prefix = "" if prefixed_by_client else str(getattr(client, "global_keyprefix", ""))
        for priority in channel.priority_steps:
            raw = client.lindex(prefix + channel._q_for_pri(name, priority), -1)
            if raw is None:
                continue
            stamp = json.loads(raw).get("headers", {}).get(PUBLISHED_AT_HEADER)
            if isinstance(stamp, int | float):
                published.append(float(stamp))
    oldest = max(0.0, time.time() - min(published)) if published else None
    return QueueState(name=name, depth=depth, oldest_age_seconds=oldest, age_known=True)


def _declared_queue(connection: Any, name: str) -> QueueState:
    # AMQP (and other transports): a passive declare reports the message count without creating anything.
    # Messages carry no enqueue time the broker would tell us without consuming them, so the age is unknown.
    channel = connection.channel()
    try:
        declared = channel.queue_declare(queue=name, passive=True)
        depth = int(declared.message_count)
    except ChannelError:
        depth = 0  # not declared yet: nothing was ever sent to it
    finally:
        # A channel the broker closed after a 404 cannot be closed again.
        with contextlib.suppress(Exception):
            channel.close()
    return QueueState(name=name, depth=depth, oldest_age_seconds=None, age_known=False)


def read_queue_states(app: Celery, names: Sequence[str], timeout: int = 2) -> list[QueueState]:
    """Depth and age of each named queue (blocking broker I/O)."""
    with app.connection_for_read() as connection:
        connection.ensure_connection(max_retries=1, timeout=timeout)
        if connection.transport.driver_type == "redis":
            channel = connection.default_channel
            return [_redis_queue(channel, name) for name in names]
        return [_declared_queue(connection, name) for name in names]


async def queue_states(app: Celery, names: Sequence[str]) -> list[QueueState]:
    return await anyio.to_thread.run_sync(read_queue_states, app, names)


async def consumers_by_queue(app: Celery, timeout: float = 1.0) -> dict[str, list[str]]:
    """Queue name -> names of the workers consuming it, from a broadcast to every worker."""

    def inspect() -> dict[str, list[str]]:
        replies: dict[str, Any] = app.control.inspect(timeout=timeout).active_queues() or {}
        consumers: dict[str, list[str]] = {}
        for worker, queues in sorted(replies.items()):
            for queue in queues or ():
                consumers.setdefault(str(queue.get("name")), []).append(worker)
        return consumers

    return await anyio.to_thread.run_sync(inspect)
