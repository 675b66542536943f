"""Idempotency-Key on POST /run and /run/stream: a replay gets the first answer, and the model runs once per key."""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from pytest_httpserver import HTTPServer

from tests.conftest import make_stack
from tests.utils.auth import bearer
from tests.utils.conversations import sse_events, wait_until_persisted
from tests.utils.model_server import sse
from tests.utils.processes import wait_until
from tests.utils.services import RedisTarget
from tests.utils.stack import Stack, api_alone


def post_run(stack: Stack, body: dict[str, Any], key: str | None, owner: str = "alice") -> httpx.Response:
    headers = bearer(owner) if owner else {}
    if key is not None:
        headers["Idempotency-Key"] = key
    with stack.http(headers=headers) as client:
        return client.post("/run", json=body)


def post_stream(
    stack: Stack, body: dict[str, Any], key: str, owner: str | None = "alice"
) -> tuple[httpx.Headers, list[tuple[str, dict[str, Any]]]]:
    headers = {**(bearer(owner) if owner else {}), "Idempotency-Key": key}
    with stack.http(headers=headers) as client, client.stream("POST", "/run/stream", json=body) as response:
        assert response.status_code == 200, response.read()
        return response.headers, list(sse_events(response))


def test_a_replay_returns_the_first_answer_and_stores_one_turn(keyed_stack: Stack) -> None:
    session = f"idem-{uuid.uuid4()}"
    key = str(uuid.uuid4())
    first = post_run(keyed_stack, {"user_input": "pay the invoice", "session_id": session}, key)
    replay = post_run(keyed_stack, {"session_id": session, "user_input": "pay the invoice"}, key)

    assert first.status_code == replay.status_code == 200, replay.text
    assert replay.json() == first.json()
    assert replay.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers

    # The model saw one earlier turn, not two: the replay added nothing to the session.
    follow_up = post_run(keyed_stack, {"user_input": "and now?", "session_id": session}, None)
    assert "(I remember 1 earlier turns.)" in follow_up.json()["answer"]
    wait_until(lambda: len(keyed_stack.stored_turns(session)) == 2, 60, what="both turns of the session to be stored")
    assert [t["turn_id"] for t in keyed_stack.stored_turns(session)].count(first.json()["turn_id"]) == 1


def test_a_replay_without_a_session_id_keeps_the_generated_session(keyed_stack: Stack) -> None:
    key = str(uuid.uuid4())
    first = post_run(keyed_stack, {"user_input": "new conversation"}, key)
    replay = post_run(keyed_stack, {"user_input": "new conversation"}, key)
    assert replay.json()["session_id"] == first.json()["session_id"]
    assert replay.json()["turn_id"] == first.json()["turn_id"]


def test_requests_without_the_header_are_never_deduplicated(keyed_stack: Stack) -> None:
    body = {"user_input": "same words", "session_id": f"plain-{uuid.uuid4()}"}
    assert post_run(keyed_stack, body, None).json()["turn_id"] != post_run(keyed_stack, body, None).json()["turn_id"]


def test_a_key_reused_with_another_body_is_refused_with_422(keyed_stack: Stack) -> None:
    key = str(uuid.uuid4())
    assert post_run(keyed_stack, {"user_input": "transfer 10"}, key).status_code == 200
    reused = post_run(keyed_stack, {"user_input": "transfer 1000"}, key)
    assert reused.status_code == 422
    assert reused.json()["error"] == "idempotency_key_reused"
    assert "different body" in reused.json()["message"]


def test_each_api_key_has_its_own_idempotency_keys(keyed_stack: Stack) -> None:
    key = str(uuid.uuid4())
    alices = post_run(keyed_stack, {"user_input": "hello"}, key, owner="alice")
    bobs = post_run(keyed_stack, {"user_input": "hello"}, key, owner="bob")
    assert alices.status_code == bobs.status_code == 200
    assert alices.json()["turn_id"] != bobs.json()["turn_id"]
    assert "idempotent-replayed" not in bobs.headers


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("", "empty"),
        ("k" * 256, "too long"),
        ("has space", "space"),
        ("tab\there", "control"),
        ("caf\u00e9", "latin-1"),
    ],
)
def test_malformed_idempotency_keys_are_refused_with_422(keyed_stack: Stack, key: str, why: str) -> None:
    headers = {
        name.encode(): value.encode("latin-1")
        for name, value in {**bearer("alice"), "Content-Type": "application/json", "Idempotency-Key": key}.items()
    }
    with keyed_stack.http() as client:
        response = client.post("/run", content=b'{"user_input": "hello"}', headers=headers)
    assert response.status_code == 422, f"{why}: {response.text}"
    assert response.json()["error"] == "validation_error"
    assert "Idempotency-Key" in response.json()["message"]


def test_a_key_of_255_visible_characters_is_accepted(keyed_stack: Stack) -> None:
    key = ("!~" + uuid.uuid4().hex) * 10
    assert post_run(keyed_stack, {"user_input": "long key"}, key[:255]).status_code == 200


def test_a_repeated_stream_replays_the_first_answer_on_either_endpoint_and_stores_one_turn(
    keyed_stack: Stack,
) -> None:
    session = f"idem-stream-{uuid.uuid4()}"
    key = str(uuid.uuid4())
    body = {"user_input": "stream the invoice", "session_id": session}
    first_headers, first = post_stream(keyed_stack, body, key)
    replay_headers, replay = post_stream(keyed_stack, body, key)
    as_run = post_run(keyed_stack, body, key)

    assert "idempotent-replayed" not in first_headers
    assert len(first) > 2 and first[-1][0] == "done"
    done = first[-1][1]
    assert replay_headers["idempotent-replayed"] == "true"
    assert replay == [("token", {"delta": done["answer"]}), ("done", done)]
    assert as_run.status_code == 200 and as_run.headers["idempotent-replayed"] == "true"
    assert as_run.json() == done
    [stored] = wait_until_persisted(keyed_stack, session, 1, headers=bearer("alice"))
    assert stored["turn_id"] == done["turn_id"]


def test_a_stream_with_a_key_used_for_another_body_is_refused_with_422_before_streaming(keyed_stack: Stack) -> None:
    key = str(uuid.uuid4())
    assert post_run(keyed_stack, {"user_input": "first body"}, key).status_code == 200
    headers = {**bearer("alice"), "Idempotency-Key": key}
    with keyed_stack.http(headers=headers) as client:
        response = client.post("/run/stream", json={"user_input": "second body"})
    assert response.status_code == 422
    assert response.json()["error"] == "idempotency_key_reused"


def test_a_stream_cut_short_lets_go_of_its_key_and_the_retry_answers_anew(split_pools_stack: Stack) -> None:
    session = f"idem-cut-{uuid.uuid4()}"
    key = str(uuid.uuid4())
    body = {"user_input": "a long answer please", "session_id": session}
    with (
        split_pools_stack.http(headers={"Idempotency-Key": key}) as client,
        client.stream("POST", "/run/stream", json=body) as response,
    ):
        next(sse_events(response))  # one token, then the client leaves

    headers, retried = post_stream(split_pools_stack, body, key, owner=None)
    _, replayed = post_stream(split_pools_stack, body, key, owner=None)

    assert "idempotent-replayed" not in headers
    assert retried[-1][0] == "done" and replayed[-1] == retried[-1]
    turns = wait_until_persisted(split_pools_stack, session, 2)
    assert sorted(turn["status"] for turn in turns) == ["complete", "interrupted"]
    assert retried[-1][1]["turn_id"] in {turn["turn_id"] for turn in turns}


# --- one model call per key, checked against a real HTTP model server --------------------------


def completion(content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "test-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
    }


@pytest.fixture
def model_api(
    httpserver: HTTPServer, keyed_sqlite_url: str, redis_target: RedisTarget, log_dir: Path
) -> Iterator[Stack]:
    """An API (no worker needed: saves only have to reach the broker) answering with an HTTP model server."""
    with api_alone(
        make_stack(
            "idem-model",
            redis_target,
            keyed_sqlite_url,
            log_dir,
            LLM_PROVIDER="openai",
            LLM_MODEL="test-model",
            OPENAI_BASE_URL=httpserver.url_for("/v1"),
            OPENAI_API_KEY="test-key",
            LLM_MAX_RETRIES="0",
            API_KEYS="alice:alice-3c1f0e8a9b7d4e2f",
        )
    ) as stack:
        yield stack


def test_the_model_runs_once_per_key_and_a_failed_first_try_can_be_retried(
    httpserver: HTTPServer, model_api: Stack
) -> None:
    httpserver.expect_ordered_request("/v1/chat/completions", method="POST").respond_with_json(
        {"error": {"message": "overloaded"}}, status=503
    )
    httpserver.expect_ordered_request("/v1/chat/completions", method="POST").respond_with_json(completion("42"))
    key = str(uuid.uuid4())
    body = {"user_input": "what is six times seven", "session_id": "answers"}

    failed = post_run(model_api, body, key)
    retried = post_run(model_api, body, key)
    replayed = post_run(model_api, body, key)

    assert failed.status_code == 502
    assert retried.status_code == replayed.status_code == 200
    assert replayed.json() == retried.json() and retried.json()["answer"] == "42"
    assert len(httpserver.log) == 2  # the failed call and the retry; the replay called no model


# --- a duplicate that arrives while the first request is still running --------------------------

SLOW_KEY = "alice-key-1"


@dataclass
class Replicas:
    """Two API processes sharing one Redis namespace, with a 3-second model; `impatient` never waits."""

    stack: Stack
    patient: str
    impatient: str

    def post(self, url: str, key: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {SLOW_KEY}", "Idempotency-Key": key}
        return httpx.post(f"{url}/run", json={"user_input": "slow one"}, headers=headers, timeout=60)

    def claimed(self, key: str) -> bool:
        hashed = hashlib.sha256(key.encode()).hexdigest()
        client = redis.Redis(host=self.stack.redis_host, port=self.stack.redis_port)
        try:
            return bool(client.exists(f"{self.stack.prefix}convoflow:idempotency:alice:{hashed}"))
        finally:
            client.close()

    def start_first(self, key: str, results: dict[str, httpx.Response]) -> threading.Thread:
        """Send a request from a thread and return once it holds its key (while its model still thinks)."""
        thread = threading.Thread(target=lambda: results.update(first=self.post(self.patient, key)))
        thread.start()
        wait_until(lambda: self.claimed(key), 30, what="the first request to claim its key")
        return thread


@pytest.fixture(scope="module")
def replicas(keyed_sqlite_url: str, redis_target: RedisTarget, log_dir: Path) -> Iterator[Replicas]:
    stack = make_stack(
        "idem-slow", redis_target, keyed_sqlite_url, log_dir, OFFLINE_LATENCY_MS="3000", API_KEYS=f"alice:{SLOW_KEY}"
    )
    try:
        stack.start_api(name="api-patient")
        patient = stack.api_url
        stack.extra_env["IDEMPOTENCY_WAIT_SECONDS"] = "0"
        stack.start_api(name="api-impatient")
        yield Replicas(stack, patient, stack.api_url)
    finally:
        stack.stop()


def test_a_concurrent_duplicate_waits_for_the_first_answer(replicas: Replicas) -> None:
    key = str(uuid.uuid4())
    results: dict[str, httpx.Response] = {}
    thread = replicas.start_first(key, results)
    duplicate = replicas.post(replicas.patient, key)
    thread.join()
    assert results["first"].status_code == duplicate.status_code == 200
    assert duplicate.json() == results["first"].json()
    assert duplicate.headers["idempotent-replayed"] == "true"


def test_a_concurrent_duplicate_that_cannot_wait_gets_409(replicas: Replicas) -> None:
    key = str(uuid.uuid4())
    results: dict[str, httpx.Response] = {}
    thread = replicas.start_first(key, results)
    # The key was claimed through the other replica: they share it in Redis.
    duplicate = replicas.post(replicas.impatient, key)
    thread.join()
    assert results["first"].status_code == 200
    assert duplicate.status_code == 409
    assert duplicate.json()["error"] == "idempotency_key_in_use"
    assert duplicate.headers["retry-after"] == "1"
    assert replicas.post(replicas.impatient, key).json() == results["first"].json()


def test_a_stream_whose_model_failed_can_be_retried_with_its_key_and_then_replays(
    httpserver: HTTPServer, model_api: Stack
) -> None:
    httpserver.expect_ordered_request("/v1/chat/completions", method="POST").respond_with_json(
        {"error": {"message": "overloaded"}}, status=503
    )
    httpserver.expect_ordered_request("/v1/chat/completions", method="POST").respond_with_data(
        sse("Forty", "-two."), content_type="text/event-stream"
    )
    key = str(uuid.uuid4())
    body = {"user_input": "six times seven, streamed", "session_id": "streamed-answers"}

    _, failed = post_stream(model_api, body, key)
    _, retried = post_stream(model_api, body, key)
    replay_headers, replayed = post_stream(model_api, body, key)

    assert failed[-1][0] == "error" and failed[-1][1]["error"] == "model_unavailable"
    assert retried[-1][0] == "done" and retried[-1][1]["answer"] == "Forty-two."
    assert replay_headers["idempotent-replayed"] == "true" and replayed[-1] == retried[-1]
    assert len(httpserver.log) == 2  # the failed call and the retry; the replay called no model


def test_a_stream_duplicate_that_cannot_wait_gets_409_before_streaming(replicas: Replicas) -> None:
    key = str(uuid.uuid4())
    results: dict[str, httpx.Response] = {}
    thread = replicas.start_first(key, results)
    headers = {"Authorization": f"Bearer {SLOW_KEY}", "Idempotency-Key": key}
    duplicate = httpx.post(f"{replicas.impatient}/run/stream", json={"user_input": "slow one"}, headers=headers)
    thread.join()
    assert duplicate.status_code == 409
    assert duplicate.headers["content-type"] == "application/json"
    assert duplicate.json()["error"] == "idempotency_key_in_use"
