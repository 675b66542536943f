"""What clients see when Redis, the broker, the workers or the model are down: clear JSON, never a 500."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from pytest_httpserver import HTTPServer

from tests.conftest import make_stack
from tests.utils.processes import free_port
from tests.utils.services import RedisTarget
from tests.utils.stack import Stack, api_alone


@pytest.fixture(scope="module")
def api_without_redis(sqlite_url: str, log_dir: Path) -> Iterator[Stack]:
    dead = RedisTarget("127.0.0.1", free_port(), None)
    with api_alone(make_stack("no-redis", dead, sqlite_url, log_dir)) as stack:
        yield stack


def test_run_answers_503_naming_the_unreachable_redis(api_without_redis: Stack) -> None:
    address = f"127.0.0.1:{api_without_redis.redis_port}"
    with api_without_redis.http() as client:
        response = client.post("/run", json={"user_input": "hello", "session_id": "down"})
    assert response.status_code == 503
    body = response.json()
    assert body["error"] in ("redis_unavailable", "broker_unavailable")
    assert address in body["message"]
    assert "Traceback" not in response.text


@pytest.mark.parametrize(("method", "path"), [("GET", "/history"), ("DELETE", "/history?session_id=x")])
def test_history_answers_503_when_redis_is_down(api_without_redis: Stack, method: str, path: str) -> None:
    with api_without_redis.http() as client:
        response = client.request(method, path)
    assert response.status_code == 503
    assert response.json()["error"] in ("redis_unavailable", "broker_unavailable")


def test_task_status_answers_503_when_redis_is_down(api_without_redis: Stack) -> None:
    with api_without_redis.http() as client:
        response = client.get(f"/task/{uuid.uuid4()}")
    assert response.status_code == 503


def test_health_answers_503_and_names_the_failed_parts(api_without_redis: Stack) -> None:
    with api_without_redis.http() as client:
        response = client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"]["ok"] is False
    assert body["checks"]["broker"]["ok"] is False
    assert f"127.0.0.1:{api_without_redis.redis_port}" in body["checks"]["redis"]["detail"]


def test_health_names_the_missing_worker(sqlite_url: str, redis_target: RedisTarget, log_dir: Path) -> None:
    stack = make_stack("no-worker", redis_target, sqlite_url, log_dir)
    stack.start_api()
    try:
        with stack.http() as client:
            response = client.get("/health")
    finally:
        stack.stop()
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["redis"]["ok"] and checks["broker"]["ok"]
    assert checks["workers"]["ok"] is False and "no Celery worker" in checks["workers"]["detail"]
    assert checks["database"]["ok"] is False


def test_history_answers_504_when_no_worker_consumes(sqlite_url: str, redis_target: RedisTarget, log_dir: Path) -> None:
    stack = make_stack("idle", redis_target, sqlite_url, log_dir, TASK_WAIT_TIMEOUT="1")
    stack.start_api()
    try:
        with stack.http() as client:
            response = client.get("/history")
    finally:
        stack.stop()
    assert response.status_code == 504
    assert "worker" in response.json()["message"]


def queued_keys(stack: Stack) -> list[str]:
    """Keys that a queued save would leave: the task record and the `database` queue."""
    client = redis.Redis(host=stack.redis_host, port=stack.redis_port, decode_responses=True)
    try:
        keys = [
            *client.scan_iter(match=f"{stack.prefix}convoflow:task:*"),
            *client.scan_iter(match=f"{stack.prefix}database"),
        ]
    finally:
        client.close()
    return keys


@pytest.fixture
def failing_model(httpserver: HTTPServer) -> HTTPServer:
    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_json(
        {"error": {"message": "overloaded"}}, status=503
    )
    return httpserver


def test_a_failing_model_gives_502_and_saves_nothing(
    failing_model: HTTPServer, sqlite_url: str, redis_target: RedisTarget, log_dir: Path
) -> None:
    stack = make_stack(
        "bad-model",
        redis_target,
        sqlite_url,
        log_dir,
        LLM_PROVIDER="openai",
        OPENAI_BASE_URL=failing_model.url_for("/v1"),
        OPENAI_API_KEY="test-key",
        LLM_MAX_RETRIES="2",
        LLM_RETRY_MIN_SECONDS="0.01",
        LLM_RETRY_MAX_SECONDS="0.02",
    )
    stack.start_api()
    session = f"m-{uuid.uuid4()}"
    try:
        with stack.http() as client:
            response = client.post("/run", json={"user_input": "hello", "session_id": session})
        queued = queued_keys(stack)
    finally:
        stack.stop()
    assert response.status_code == 502
    body = response.json()
    assert body["error"] == "model_unavailable"
    assert "503" in body["message"]
    assert "test-key" not in response.text
    assert len(failing_model.log) == 3  # the first call and two retries
    assert queued == []


def test_an_unreachable_model_gives_502_and_the_log_says_why(
    sqlite_url: str, redis_target: RedisTarget, log_dir: Path
) -> None:
    stack = make_stack(
        "no-model",
        redis_target,
        sqlite_url,
        log_dir,
        LLM_PROVIDER="openai",
        OPENAI_BASE_URL=f"http://127.0.0.1:{free_port()}/v1",
        LLM_MAX_RETRIES="1",
        LLM_RETRY_MIN_SECONDS="0.01",
        LLM_RETRY_MAX_SECONDS="0.02",
    )
    api = stack.start_api()
    try:
        with stack.http() as client:
            response = client.post("/run", json={"user_input": "hello"})
    finally:
        stack.stop()
    assert response.status_code == 502
    body = response.json()
    assert body["error"] == "model_unavailable"
    # The client is told what failed; only the operators' log says why underneath.
    failure = "could not connect to the model endpoint after 2 attempts"
    assert body["message"] == f"the language model did not answer: {failure}"
    assert f"model call failed: {failure} (ConnectionRefusedError: [Errno 111] Connect call failed" in api.log()
