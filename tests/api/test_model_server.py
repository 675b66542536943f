"""The API against a real HTTP server speaking each model protocol (OpenAI chat completions, DashScope's native
text generation): memory, isolation, streaming, failures."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from tests.conftest import make_stack
from tests.utils.conversations import history, stream, wait_for_state, wait_until_persisted
from tests.utils.model_protocols import API_KEY, PROTOCOLS, ModelProtocol
from tests.utils.model_server import sent_bodies
from tests.utils.ops import scrape, value
from tests.utils.services import RedisTarget
from tests.utils.stack import Stack, running

SYSTEM_PROMPT = "You are terse."


@pytest.fixture(scope="module", params=PROTOCOLS, ids=lambda protocol: protocol.provider)
def protocol(request: pytest.FixtureRequest) -> ModelProtocol:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def model_stack(
    protocol: ModelProtocol, make_httpserver: HTTPServer, sqlite_url: str, redis_target: RedisTarget, log_dir: Path
) -> Iterator[Stack]:
    """API and worker whose model is the test's HTTP server; two retries, quickly."""
    stack = make_stack(
        f"model-server-{protocol.provider}",
        redis_target,
        sqlite_url,
        log_dir,
        **protocol.env(make_httpserver),
        LLM_MODEL="test-model",
        LLM_MAX_RETRIES="2",
        LLM_RETRY_MIN_SECONDS="0.01",
        LLM_RETRY_MAX_SECONDS="0.02",
        SYSTEM_PROMPT=SYSTEM_PROMPT,
    )
    with running(stack, worker_args=("-c", "1")) as live:
        yield live


def test_the_model_gets_the_sessions_earlier_turns_and_never_another_sessions(
    httpserver: HTTPServer, model_stack: Stack, protocol: ModelProtocol
) -> None:
    httpserver.expect_request(protocol.path, method="POST").respond_with_handler(protocol.echo)
    mine, other = f"mine-{uuid.uuid4()}", f"other-{uuid.uuid4()}"
    with model_stack.http() as client:
        first = client.post("/run", json={"user_input": "Capital of Italy?", "session_id": mine}).json()
        client.post("/run", json={"user_input": "Something else", "session_id": other})
        second = client.post("/run", json={"user_input": "And of France?", "session_id": mine}).json()

    assert (first["answer"], second["answer"]) == ("echo: Capital of Italy?", "echo: And of France?")
    assert protocol.sent_messages(httpserver) == [
        [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "Capital of Italy?"}],
        [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "Something else"}],
        [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": "Capital of Italy?"},
            {"role": "assistant", "content": "echo: Capital of Italy?"},
            {"role": "user", "content": "And of France?"},
        ],
    ]
    assert all(body["model"] == "test-model" for body in sent_bodies(httpserver))
    assert all(request.headers["Authorization"] == f"Bearer {API_KEY}" for request, _ in httpserver.log)


def test_stream_relays_the_models_chunks_as_tokens_and_saves_the_answer(
    httpserver: HTTPServer, model_stack: Stack, protocol: ModelProtocol
) -> None:
    httpserver.expect_request(protocol.path, method="POST").respond_with_data(
        protocol.stream("Hel", "lo ", "world."), content_type="text/event-stream"
    )
    session = f"stream-{uuid.uuid4()}"
    tokens = {"name": "convoflow_model_tokens_total", "provider": protocol.provider, "model": "test-model"}
    # Both protocols report a stream's usage (OpenAI-compatible ones when asked: OPENAI_STREAM_USAGE).
    counted = {"kind": "completion", "counted_by": "usage"}
    before = value(scrape(f"{model_stack.api_url}/metrics"), **tokens, **counted)
    with model_stack.http() as client:
        events = stream(client, {"user_input": "greet me", "session_id": session})

    assert events[:-1] == [("token", {"delta": "Hel"}), ("token", {"delta": "lo "}), ("token", {"delta": "world."})]
    assert events[-1][0] == "done" and events[-1][1]["answer"] == "Hello world."
    [body] = sent_bodies(httpserver)
    assert protocol.streamed(body)
    assert protocol.messages_of(body)[-1] == {"role": "user", "content": "greet me"}
    [turn] = wait_until_persisted(model_stack, session, 1)
    assert turn["ai_response"] == "Hello world."
    assert value(scrape(f"{model_stack.api_url}/metrics"), **tokens, **counted) > before


def test_run_retries_after_a_5xx_and_answers_and_the_retry_is_logged_and_counted_without_the_users_words(
    httpserver: HTTPServer, model_stack: Stack, protocol: ModelProtocol
) -> None:
    words = f"my-private-words-{uuid.uuid4().hex}"
    request_id = f"req-{uuid.uuid4().hex[:12]}"
    # Endpoints' error messages can quote the input (a moderation refusal): they must not reach the log.
    httpserver.expect_oneshot_request(protocol.path, method="POST").respond_with_json(
        protocol.failure("server_error", f"cannot answer {words} now"), status=503
    )
    httpserver.expect_request(protocol.path, method="POST").respond_with_json(protocol.answer("Recovered."))
    retries = {"name": "convoflow_model_retries_total", "provider": protocol.provider, "model": "test-model"}
    before = value(scrape(f"{model_stack.api_url}/metrics"), **retries, reason="http_503")
    api = model_stack.processes[-1]
    logged_before = len(api.log())
    with model_stack.http() as client:
        response = client.post("/run", json={"user_input": words}, headers={"X-Request-ID": request_id})
    assert response.status_code == 200, response.text
    assert response.json()["answer"] == "Recovered."
    assert len(httpserver.log) == 2
    assert value(scrape(f"{model_stack.api_url}/metrics"), **retries, reason="http_503") == before + 1
    api_log = api.log()[logged_before:]
    [retry_line] = [line for line in api_log.splitlines() if f"[{request_id}]" in line and "retrying in" in line]
    assert " WARNING " in retry_line
    assert f"{protocol.provider} model attempt 1 of 3 failed: model endpoint returned HTTP 503" in retry_line
    assert "(code server_error)" in retry_line
    assert words not in api_log
    assert " ERROR " not in api_log


def test_stream_retries_after_a_5xx_before_the_first_token(
    httpserver: HTTPServer, model_stack: Stack, protocol: ModelProtocol
) -> None:
    httpserver.expect_oneshot_request(protocol.path, method="POST").respond_with_json(
        protocol.failure("server_error"), status=502
    )
    httpserver.expect_request(protocol.path, method="POST").respond_with_data(
        protocol.stream("Back ", "again."), content_type="text/event-stream"
    )
    with model_stack.http() as client:
        events = stream(client, {"user_input": "hello"})
    assert events[-1][0] == "done" and events[-1][1]["answer"] == "Back again."
    assert len(httpserver.log) == 2


@pytest.fixture
def failing_model(httpserver: HTTPServer, protocol: ModelProtocol) -> HTTPServer:
    httpserver.expect_request(protocol.path, method="POST").respond_with_json(
        protocol.failure("server_error"), status=500
    )
    return httpserver


def test_a_model_that_keeps_failing_gives_502(failing_model: HTTPServer, model_stack: Stack) -> None:
    session = f"fail-{uuid.uuid4()}"
    with model_stack.http() as client:
        response = client.post("/run", json={"user_input": "hello", "session_id": session})
    assert response.status_code == 502
    body = response.json()
    assert body["error"] == "model_unavailable"
    assert "HTTP 500 after 3 attempts" in body["message"]
    assert API_KEY not in response.text
    assert len(failing_model.log) == 3
    assert history(model_stack, session_id=session)["count"] == 0


def test_a_model_that_keeps_failing_ends_the_stream_with_an_error_event(
    failing_model: HTTPServer, model_stack: Stack
) -> None:
    session = f"fail-stream-{uuid.uuid4()}"
    with model_stack.http() as client:
        events = stream(client, {"user_input": "hello", "session_id": session})
    [(name, data)] = events
    assert name == "error"
    assert data["error"] == "model_unavailable"
    assert "HTTP 500 after 3 attempts" in data["message"]
    assert history(model_stack, session_id=session)["count"] == 0


def test_a_background_run_fails_with_the_models_error(failing_model: HTTPServer, model_stack: Stack) -> None:
    session = f"fail-run-{uuid.uuid4()}"
    with model_stack.http() as client:
        queued = client.post("/runs", json={"user_input": "hello", "session_id": session}).json()
    status = wait_for_state(model_stack, queued["task_id"], "failed")
    assert status["status"] == "FAILURE"
    assert status["result"] is None
    assert "the language model did not answer: model endpoint returned HTTP 500 after 3 attempts" in status["error"]
    assert API_KEY not in status["error"]
    worker_log = next(process for process in model_stack.processes if process.name.endswith("worker")).log()
    failure = "model call failed: model endpoint returned HTTP 500 after 3 attempts"
    assert f"run {queued['task_id']}: {failure}" in worker_log
    assert history(model_stack, session_id=session)["count"] == 0


def test_a_background_run_sends_the_sessions_memory_and_saves_its_turn(
    httpserver: HTTPServer, model_stack: Stack, protocol: ModelProtocol
) -> None:
    httpserver.expect_request(protocol.path, method="POST").respond_with_handler(protocol.echo)
    session = f"run-mem-{uuid.uuid4()}"
    with model_stack.http() as client:
        client.post("/run", json={"user_input": "one", "session_id": session})
        queued = client.post("/runs", json={"user_input": "two", "session_id": session}).json()
    status = wait_for_state(model_stack, queued["task_id"], "succeeded")
    assert status["result"]["answer"] == "echo: two"
    assert protocol.sent_messages(httpserver)[-1][1:] == [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "echo: one"},
        {"role": "user", "content": "two"},
    ]
    newest, _ = wait_until_persisted(model_stack, session, 2)
    assert (newest["turn_id"], newest["ai_response"]) == (queued["turn_id"], "echo: two")
