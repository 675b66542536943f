"""kombu's Redis acknowledgement emulation, without its two round trips for messages a redelivery could not help.

For each message it delivers, kombu's Redis transport records the message in Redis (the `unacked` hash and its
index) so that the messages of a worker that dies are given back once the visibility timeout has passed, and
deletes the record when the message is acknowledged: two round trips to Redis per message, in the worker's main
loop. A message that expires before that timeout (Celery's `expires`: the API sets it on every read it waits for,
to the time it waits) gains nothing from the record: given back after a crash, it would be past its expiry and
Celery would only discard it, while its caller stopped waiting long before. Such messages are held in the
worker's memory only. A read rejected for redelivery, or still waiting in the worker's buffer when the worker
shuts down, still goes back to its queue, from memory. Messages without an expiry, or with a later one (every
save, delete and workflow run; a read sent by `.delay()` without `expires`), are recorded exactly as before.

Measured on a history page read through the queue (bench/README.md): 0.57 ms less worker CPU per read.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from kombu.transport import redis as redis_transport
from kombu.transport import virtual


def worthless_when_redelivered(headers: Mapping[str, Any] | None, visibility_timeout: float, now: datetime) -> bool:
    """Whether a message delivered at `now` expires before kombu could give it back (`visibility_timeout` later)."""
    expires = (headers or {}).get("expires")
    if not isinstance(expires, str):
        return False
    try:
        moment = datetime.fromisoformat(expires)
    except ValueError:
        return False
    if moment.tzinfo is None:
        return False  # a naive time's zone is the sender's to know: keep kombu's record
    return moment <= now + timedelta(seconds=visibility_timeout)


class ExpiringMessagesQoS(redis_transport.QoS):  # type: ignore[misc]  # kombu is untyped
    """kombu's Redis QoS, holding in memory only the deliveries that `worthless_when_redelivered`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_memory: set[Any] = set()

    def append(self, message: Any, delivery_tag: Any) -> None:
        if worthless_when_redelivered(message.headers, self.visibility_timeout, datetime.now(UTC)):
            self._in_memory.add(delivery_tag)
            virtual.QoS.append(self, message, delivery_tag)
            return
        super().append(message, delivery_tag)

    def ack(self, delivery_tag: Any) -> None:
        if delivery_tag in self._in_memory:
            self._in_memory.discard(delivery_tag)
            virtual.QoS.ack(self, delivery_tag)
            return
        super().ack(delivery_tag)

    def reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        if delivery_tag in self._in_memory:
            if requeue:
                self.restore_by_tag(delivery_tag, leftmost=True)
            self._in_memory.discard(delivery_tag)
            virtual.QoS.ack(self, delivery_tag)
            return
        super().reject(delivery_tag, requeue)

    def restore_by_tag(self, tag: Any, client: Any = None, leftmost: bool = False) -> None:
        """Put an unacknowledged message back on its queue (kombu calls this on reject and at shutdown)."""
        if tag not in self._in_memory:
            super().restore_by_tag(tag, client, leftmost)
            return
        # A held tag leaves `_in_memory` before it is acknowledged, so its message is still delivered, not acked.
        self._in_memory.discard(tag)
        delivered: Any = self._delivered
        channel: Any = self.channel
        message = delivered[tag]
        delivery = message.delivery_info
        with channel.conn_or_acquire(client) as connection:
            channel._do_restore_message(
                message._raw, delivery["exchange"], delivery["routing_key"], connection, leftmost
            )


def use_expiring_messages_qos() -> None:
    """Make every Redis channel of this process use ExpiringMessagesQoS (called once a worker process starts).

    kombu picks a channel's QoS class from its `QoS` attribute; Sentinel channels inherit it. Only a worker
    consumes tasks, so the API, Beat and Flower keep kombu's class.
    """
    redis_transport.Channel.QoS = ExpiringMessagesQoS
