"""The new endpoints when Redis or the broker is down: clear JSON errors, or an `error` event once streaming."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import make_stack
from tests.utils.conversations import stream
from tests.utils.processes import free_port
from tests.utils.services import RedisTarget
from tests.utils.stack import Stack, api_alone


@pytest.fixture(scope="module")
def api_without_redis(sqlite_url: str, log_dir: Path) -> Iterator[Stack]:
    stack = make_stack("outage-no-redis", RedisTarget("127.0.0.1", free_port(), None), sqlite_url, log_dir)
    stack.start_api()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def api_without_broker(sqlite_url: str, redis_target: RedisTarget, log_dir: Path) -> Iterator[Stack]:
    """Redis answers (memory, results), but the broker is a RabbitMQ address nobody listens on."""
    dead_broker = f"amqp://guest:guest@127.0.0.1:{free_port()}//"
    with api_alone(
        make_stack("outage-no-broker", redis_target, sqlite_url, log_dir, CELERY_BROKER_URL=dead_broker)
    ) as stack:
        yield stack


def test_stream_reports_an_unreachable_redis_as_an_error_event(api_without_redis: Stack) -> None:
    with api_without_redis.http() as client:
        events = stream(client, {"user_input": "hello", "session_id": "down"})
    [(name, data)] = events
    assert name == "error"
    assert data["error"] == "redis_unavailable"
    assert f"127.0.0.1:{api_without_redis.redis_port}" in data["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/runs"),
        ("GET", "/sessions"),
        ("DELETE", "/sessions/some-session"),
        ("POST", f"/task/{uuid.uuid4()}/cancel"),
        ("GET", "/history?session_id=some-session"),
    ],
)
def test_new_endpoints_answer_503_when_redis_is_down(api_without_redis: Stack, method: str, path: str) -> None:
    with api_without_redis.http() as client:
        response = client.request(method, path, json={"user_input": "hello"} if method == "POST" else None)
    assert response.status_code == 503, response.text
    assert response.json()["error"] in ("redis_unavailable", "broker_unavailable")


def test_stream_that_cannot_queue_its_save_ends_with_an_error_event(api_without_broker: Stack) -> None:
    with api_without_broker.http() as client:
        events = stream(client, {"user_input": "hello", "session_id": f"nb-{uuid.uuid4()}"})
    names = [name for name, _ in events]
    assert names[-1] == "error" and set(names[:-1]) == {"token"}
    assert events[-1][1]["error"] == "broker_unavailable"


def test_runs_answers_503_when_the_broker_is_down(api_without_broker: Stack) -> None:
    with api_without_broker.http() as client:
        response = client.post("/runs", json={"user_input": "hello"})
    assert response.status_code == 503
    assert response.json()["error"] == "broker_unavailable"
