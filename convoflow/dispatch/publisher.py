"""Task messages pushed onto a Redis broker from the event loop, as Celery and kombu would publish them.

kombu's publish is blocking I/O, so the API ran it in a worker thread: a thread handoff plus about a millisecond
of kombu's producer machinery (an exchange lookup in Redis, serialization, retry wrappers) per message, which
was most of a history read's cost in the API. On a Redis broker a task message is one LPUSH of kombu's JSON
envelope onto the queue's list. This module builds that envelope from Celery's own message factory (protocol 2,
`as_task_v2`), routes it by the Celery configuration, sends the `before_task_publish`/`after_task_publish`
signals as `send_task` does, and pushes it with the API's asyncio client. tests/dispatch/test_publisher.py holds
it to what kombu publishes.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis
from celery import Celery, signals
from kombu import serialization

from convoflow.config import Settings
from convoflow.logging_setup import describe_arguments

# Queues Redis commands on the pipeline it is given, to run just before a task message is pushed.
BeforePush = Callable[[Any], None]

# kombu's persistent delivery mode, and the priority of a message published without one (its list has no suffix).
PERSISTENT = 2
DEFAULT_PRIORITY = 0


@dataclass(frozen=True)
class TaskMessage:
    """One task message ready for the broker: the Redis list it goes to and kombu's envelope."""

    task: str
    queue: str
    key: str
    data: bytes
    headers: dict[str, Any]
    body: Any


def send_by_name(app: Celery, task: str, kwargs: dict[str, Any], task_id: str | None = None, **options: Any) -> None:
    """Publish `task` through kombu, by name: the sender loads no task module (and so no database code), routes come
    from the configuration, and Flower shows the arguments' sizes (kwargsrepr), never conversation text."""
    app.send_task(task, kwargs=kwargs, task_id=task_id, kwargsrepr=describe_arguments(kwargs), **options)


def publishes_directly(settings: Settings) -> bool:
    """Whether the broker is the Redis the API already talks to (else kombu publishes, e.g. to RabbitMQ)."""
    return settings.broker_url == settings.redis_url and settings.broker_url.startswith(("redis://", "rediss://"))


class RedisTaskPublisher:
    """Builds Celery task messages and LPUSHes them onto the broker's queue lists with an asyncio client."""

    def __init__(self, app: Celery, client: aioredis.Redis, key_prefix: str = "") -> None:
        self.app = app
        self.client = client
        self.key_prefix = key_prefix

    def build(
        self,
        task: str,
        kwargs: dict[str, Any],
        task_id: str,
        *,
        expires: float | None = None,
        reply_to: str | None = None,
        kwargsrepr: str,
    ) -> TaskMessage | None:
        """The message `app.send_task(task, kwargs=kwargs, task_id=task_id, ...)` would put on the broker.

        None for a task routed through anything but a direct exchange (kombu must look up its bindings).
        """
        queue = self.app.amqp.router.route({}, task, (), kwargs)["queue"]
        if getattr(queue.exchange, "type", "direct") != "direct":
            return None
        headers, properties, body, _sent_event = self.app.amqp.as_task_v2(
            task_id, task, args=(), kwargs=kwargs, expires=expires, reply_to=reply_to, kwargsrepr=kwargsrepr
        )
        # Celery's send_task publishes to the anonymous exchange with the queue's name as routing key.
        signals.before_task_publish.send(
            sender=task,
            body=body,
            exchange="",
            routing_key=queue.name,
            declare=[queue],
            headers=headers,
            properties=properties,
            retry_policy=None,
        )
        content_type, content_encoding, payload = serialization.dumps(body, serializer="json")
        if expires is not None:
            properties["expiration"] = str(int(max(expires, 0) * 1000))  # kombu's per-message TTL, milliseconds
        properties.update(
            delivery_mode=PERSISTENT,
            delivery_info={"exchange": "", "routing_key": queue.name},
            priority=DEFAULT_PRIORITY,
            body_encoding="base64",
            delivery_tag=str(uuid.uuid4()),
        )
        envelope = {
            "body": base64.b64encode(payload.encode() if isinstance(payload, str) else payload).decode(),
            "content-encoding": content_encoding,
            "content-type": content_type,
            "headers": headers,
            "properties": properties,
        }
        return TaskMessage(task, queue.name, self.key_prefix + queue.name, orjson.dumps(envelope), headers, body)

    async def publish(self, message: TaskMessage, before: BeforePush | None = None) -> list[Any]:
        """Push `message` onto its queue; raises redis.RedisError when the broker is unreachable.

        `before(pipeline)` may queue commands that Redis runs just before the push, in the same round trip;
        their replies are returned.
        """
        if before is None:
            await self.client.lpush(message.key, message.data)
            replies: list[Any] = []
        else:
            async with self.client.pipeline(transaction=False) as pipe:
                before(pipe)
                pipe.lpush(message.key, message.data)
                replies = list(await pipe.execute())[:-1]
        signals.after_task_publish.send(
            sender=message.task, body=message.body, headers=message.headers, exchange="", routing_key=message.queue
        )
        return replies
