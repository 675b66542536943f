"""ExpiringMessagesQoS against the real Redis, through kombu's Redis transport: what it records, what it gives back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from kombu import Connection, Consumer, Exchange, Message, Producer, Queue
from kombu.transport import redis as redis_transport

from convoflow.worker.broker_qos import ExpiringMessagesQoS, worthless_when_redelivered
from tests.utils.services import RedisTarget, delete_prefixed_keys

VISIBILITY = 30.0
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expires", "worthless"),
    [
        ((NOW + timedelta(seconds=10)).isoformat(), True),
        ((NOW + timedelta(seconds=VISIBILITY)).isoformat(), True),
        ((NOW + timedelta(seconds=VISIBILITY + 1)).isoformat(), False),
        ((NOW + timedelta(hours=1)).isoformat(), False),
        ((NOW + timedelta(seconds=10)).replace(tzinfo=None).isoformat(), False),  # naive: the sender's zone
        ("soon", False),
        (None, False),
        (15, False),
    ],
)
def test_only_a_message_expiring_before_kombu_could_give_it_back_is_worthless_then(
    expires: Any, worthless: bool
) -> None:
    assert worthless_when_redelivered({"expires": expires}, VISIBILITY, NOW) is worthless


def test_a_message_without_headers_is_recorded() -> None:
    assert worthless_when_redelivered(None, VISIBILITY, NOW) is False
    assert worthless_when_redelivered({}, VISIBILITY, NOW) is False


class Broker:
    """A kombu connection to the real Redis whose channels use ExpiringMessagesQoS, in a key namespace of its own."""

    def __init__(self, target: RedisTarget) -> None:
        self.target = target
        self.prefix = f"cfq{uuid.uuid4().hex[:8]}:"
        password = f":{target.password}@" if target.password else ""
        self.url = f"redis://{password}{target.host}:{target.port}/0"
        self.queue = Queue("reads", Exchange("reads"), routing_key="reads")
        self.redis = redis.Redis.from_url(self.url, decode_responses=True)

    def connection(self) -> Connection:
        options = {"global_keyprefix": self.prefix, "visibility_timeout": VISIBILITY}
        return Connection(self.url, transport_options=options)

    def publish(self, name: str, expires_in: float | None) -> None:
        headers: dict[str, Any] = {"task": name}
        if expires_in is not None:
            headers["expires"] = (datetime.now(UTC) + timedelta(seconds=expires_in)).isoformat()
        with self.connection() as connection:
            Producer(connection).publish(
                {"name": name}, headers=headers, declare=[self.queue], exchange="reads", routing_key="reads"
            )

    def unacked(self) -> list[str]:
        """The payloads kombu recorded as delivered and not yet acknowledged."""
        return [str(entry) for entry in self.redis.hvals(f"{self.prefix}unacked")]

    def queued(self) -> int:
        return int(self.redis.llen(f"{self.prefix}reads"))

    def close(self) -> None:
        self.redis.close()
        delete_prefixed_keys(self.target.host, self.target.port, self.prefix, self.target.password)


@pytest.fixture
def broker(redis_target: RedisTarget, monkeypatch: pytest.MonkeyPatch) -> Iterator[Broker]:
    # What convoflow.worker.broker_qos.use_expiring_messages_qos does in a worker, undone after the test.
    monkeypatch.setattr(redis_transport.Channel, "QoS", ExpiringMessagesQoS)
    broker = Broker(redis_target)
    try:
        yield broker
    finally:
        broker.close()


def _receive(connection: Connection, broker: Broker, count: int) -> list[Message]:
    received: list[Message] = []
    consumer = Consumer(connection, [broker.queue], callbacks=[lambda _body, message: received.append(message)])
    consumer.qos(prefetch_count=count)
    consumer.consume()
    while len(received) < count:
        connection.drain_events(timeout=5)
    return received


def test_a_message_expiring_within_the_visibility_timeout_is_held_in_memory_only(broker: Broker) -> None:
    broker.publish("read", expires_in=10)
    broker.publish("save", expires_in=None)
    broker.publish("later", expires_in=VISIBILITY * 10)
    with broker.connection() as connection:
        messages = _receive(connection, broker, 3)
        channel: Any = connection.default_channel
        assert isinstance(channel.qos, ExpiringMessagesQoS)
        recorded = "".join(broker.unacked())
        assert sorted(message.headers["task"] for message in messages) == ["later", "read", "save"]
        assert '"save"' in recorded and '"later"' in recorded and '"read"' not in recorded
        for message in messages:
            message.ack()
        assert broker.unacked() == [] and broker.queued() == 0
        assert channel.qos._in_memory == set()  # nothing left behind for the worker's lifetime


def test_a_held_message_rejected_for_redelivery_goes_back_to_its_queue(broker: Broker) -> None:
    broker.publish("read", expires_in=10)
    with broker.connection() as connection:
        (message,) = _receive(connection, broker, 1)
        assert broker.queued() == 0
        message.reject(requeue=True)
        assert broker.queued() == 1 and broker.unacked() == []
        (again,) = _receive(connection, broker, 1)
        assert again.headers["task"] == "read" and again.delivery_info["redelivered"] is True
        again.reject(requeue=False)
        channel: Any = connection.default_channel
        assert channel.qos._in_memory == set()
    assert broker.queued() == 0


def test_a_held_message_still_unacknowledged_when_the_channel_closes_goes_back_to_its_queue(broker: Broker) -> None:
    broker.publish("read", expires_in=10)
    broker.publish("done", expires_in=10)
    with broker.connection() as connection:
        messages = {message.headers["task"]: message for message in _receive(connection, broker, 2)}
        messages["done"].ack()
        assert broker.queued() == 0
    # As at a worker's shutdown: kombu gives back what the worker held and had not acknowledged, and only that.
    assert broker.queued() == 1 and broker.unacked() == []
    with broker.connection() as connection:
        (message,) = _receive(connection, broker, 1)
        assert message.headers["task"] == "read"
        message.ack()
