"""The DashScope provider against a real local HTTP server speaking DashScope's native text-generation API."""

import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from dashscope.api_entities.aio_session import get_shared_aio_session
from prometheus_client import REGISTRY
from pytest_httpserver import HTTPServer

from convoflow.config import Settings
from convoflow.workflow import ConversationWorkflow, ModelError, ModelProvider, PriorTurn, build_provider
from tests.utils.dashscope_server import (
    API_ROOT,
    GENERATION,
    failure,
    generation,
    sse,
    sse_failing_after,
)
from tests.utils.model_protocols import DASHSCOPE
from tests.utils.model_server import sent_bodies

pytestmark = pytest.mark.anyio

API_KEY = "sk-dashscope-secret"
MODEL = "qwen-test"


def dashscope_settings(api_root: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "llm_provider": "dashscope",
        "llm_model": MODEL,
        "dashscope_base_url": api_root,
        "dashscope_api_key": API_KEY,
        "llm_max_retries": 3,
        "llm_retry_min_seconds": 0.01,
        "llm_retry_max_seconds": 0.05,
        "llm_timeout_seconds": 5,
        "system_prompt": "You are terse.",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


_open: list[ModelProvider] = []


def provider_for(settings: Settings) -> ModelProvider:
    """build_provider, closed again when the test ends (the SDK's aiohttp session must not outlive its loop)."""
    provider = build_provider(settings)
    _open.append(provider)
    return provider


@pytest.fixture(autouse=True)
async def _close_providers() -> AsyncIterator[None]:
    yield
    while _open:
        await _open.pop().aclose()


def tokens(kind: str) -> float:
    labels = {"provider": "dashscope", "model": MODEL, "kind": kind, "counted_by": "usage"}
    return REGISTRY.get_sample_value("convoflow_model_tokens_total", labels) or 0.0


async def test_run_sends_system_prompt_prior_turns_in_order_and_new_input(httpserver: HTTPServer) -> None:
    httpserver.expect_request(GENERATION, method="POST").respond_with_json(generation("Paris."))
    settings = dashscope_settings(httpserver.url_for(API_ROOT))
    workflow = ConversationWorkflow(provider_for(settings), settings)

    answer = await workflow.run(
        "And of France?",
        [PriorTurn("Capital of Italy?", "Rome."), PriorTurn("Spain?", "Madrid.")],
    )

    assert (answer.answer, answer.model, answer.provider) == ("Paris.", MODEL, "dashscope")
    [body] = sent_bodies(httpserver)
    assert body["model"] == MODEL
    assert body["parameters"] == {"result_format": "message"}
    assert body["input"]["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Capital of Italy?"},
        {"role": "assistant", "content": "Rome."},
        {"role": "user", "content": "Spain?"},
        {"role": "assistant", "content": "Madrid."},
        {"role": "user", "content": "And of France?"},
    ]
    [(request, _)] = httpserver.log
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"


async def test_complete_returns_the_answer_and_counts_the_tokens_the_api_reports(httpserver: HTTPServer) -> None:
    httpserver.expect_request(GENERATION, method="POST").respond_with_json(
        generation("Hello there.", input_tokens=11, output_tokens=3)
    )
    provider = provider_for(dashscope_settings(httpserver.url_for(API_ROOT)))
    prompt, completion = tokens("prompt"), tokens("completion")

    assert await provider.complete([{"role": "user", "content": "hi"}]) == "Hello there."
    assert (tokens("prompt") - prompt, tokens("completion") - completion) == (11, 3)


async def test_stream_asks_for_incremental_events_and_yields_each_delta(httpserver: HTTPServer) -> None:
    httpserver.expect_request(GENERATION, method="POST").respond_with_data(
        sse("Hel", "lo ", "world."), content_type="text/event-stream"
    )
    provider = provider_for(dashscope_settings(httpserver.url_for(API_ROOT)))

    deltas = [delta async for delta in provider.stream([{"role": "user", "content": "hi"}])]

    assert deltas == ["Hel", "lo ", "world."]
    [body] = sent_bodies(httpserver)
    assert body["parameters"] == {"result_format": "message", "incremental_output": True}
    assert body["input"]["messages"] == [{"role": "user", "content": "hi"}]
    [(request, _)] = httpserver.log
    assert request.headers["X-DashScope-SSE"] == "enable"


async def test_complete_retries_after_503_and_429_and_then_answers(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request(GENERATION, method="POST").respond_with_json(
        failure("ServiceUnavailable", "busy"), status=503
    )
    httpserver.expect_ordered_request(GENERATION, method="POST").respond_with_json(
        failure("Throttling.RateQuota", "slow down"), status=429
    )
    httpserver.expect_ordered_request(GENERATION, method="POST").respond_with_json(generation("Recovered."))
    provider = provider_for(dashscope_settings(httpserver.url_for(API_ROOT)))

    assert await provider.complete([{"role": "user", "content": "hi"}]) == "Recovered."
    assert len(httpserver.log) == 3


async def test_stream_retries_after_a_5xx_before_anything_was_yielded(httpserver: HTTPServer) -> None:
    # A gateway's error page: not JSON.
    httpserver.expect_oneshot_request(GENERATION, method="POST").respond_with_data("bad gateway", status=502)
    httpserver.expect_request(GENERATION, method="POST").respond_with_data(
        sse("Back ", "again."), content_type="text/event-stream"
    )
    provider = provider_for(dashscope_settings(httpserver.url_for(API_ROOT)))

    deltas = [delta async for delta in provider.stream([{"role": "user", "content": "hi"}])]

    assert "".join(deltas) == "Back again."
    assert len(httpserver.log) == 2


async def test_an_error_event_mid_stream_ends_it_with_model_error_and_no_second_call(httpserver: HTTPServer) -> None:
    httpserver.expect_request(GENERATION, method="POST").respond_with_data(
        sse_failing_after("Half an ", code="InternalError", message="my private question leaked?"),
        content_type="text/event-stream",
    )
    provider = provider_for(dashscope_settings(httpserver.url_for(API_ROOT)))
    received: list[str] = []

    with pytest.raises(ModelError) as raised:
        async for delta in provider.stream([{"role": "user", "content": "my private question"}]):
            received.append(delta)

    assert received == ["Half an "]
    # The SDK reads no status from an error event and reports 400.
    assert str(raised.value) == "model endpoint returned HTTP 400 mid-stream"
    assert raised.value.provider == "dashscope"
    assert len(httpserver.log) == 1


async def test_persistent_500_raises_model_error_after_all_attempts(httpserver: HTTPServer) -> None:
    httpserver.expect_request(GENERATION, method="POST").respond_with_json(failure("InternalError", "boom"), status=500)
    provider = provider_for(dashscope_settings(httpserver.url_for(API_ROOT), llm_max_retries=2))

    with pytest.raises(ModelError) as raised:
        await provider.complete([{"role": "user", "content": "my private question"}])

    assert str(raised.value) == "model endpoint returned HTTP 500 after 3 attempts"
    assert raised.value.provider == "dashscope"
    assert len(httpserver.log) == 3


@pytest.mark.parametrize("status", [400, 401])
async def test_a_client_error_raises_model_error_without_retrying(httpserver: HTTPServer, status: int) -> None:
    httpserver.expect_request(GENERATION, method="POST").respond_with_json(
        failure("InvalidApiKey", f"Invalid API-key provided: {API_KEY}"), status=status
    )
    provider = provider_for(dashscope_settings(httpserver.url_for(API_ROOT)))

    with pytest.raises(ModelError) as raised:
        await provider.complete([{"role": "user", "content": "my private question"}])

    assert str(raised.value) == f"model endpoint returned HTTP {status}"
    assert API_KEY not in str(raised.value)
    assert len(httpserver.log) == 1


async def test_stream_401_raises_model_error_without_retrying(httpserver: HTTPServer) -> None:
    httpserver.expect_request(GENERATION, method="POST").respond_with_json(failure("InvalidApiKey", "no"), status=401)
    provider = provider_for(dashscope_settings(httpserver.url_for(API_ROOT)))

    with pytest.raises(ModelError, match="HTTP 401"):
        async for _ in provider.stream([{"role": "user", "content": "hi"}]):
            pass

    assert len(httpserver.log) == 1


async def test_empty_answer_raises_model_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request(GENERATION, method="POST").respond_with_json(generation(""))
    provider = provider_for(dashscope_settings(httpserver.url_for(API_ROOT)))

    with pytest.raises(ModelError, match="empty answer"):
        await provider.complete([{"role": "user", "content": "hi"}])


async def test_a_model_that_never_answers_is_retried_and_then_reported_as_timed_out() -> None:
    # A listener that takes connections (the kernel's backlog) and never reads or answers them.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        settings = dashscope_settings(f"http://127.0.0.1:{port}{API_ROOT}", llm_timeout_seconds=0.2, llm_max_retries=1)
        provider = provider_for(settings)

        with pytest.raises(ModelError) as raised:
            await provider.complete([{"role": "user", "content": "hi"}])

    assert str(raised.value) == "model endpoint timed out after 2 attempts"


async def test_unreachable_endpoint_raises_model_error_after_retries() -> None:
    # A port that was free a moment ago and has no listener now.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = provider_for(dashscope_settings(f"http://127.0.0.1:{port}{API_ROOT}", llm_max_retries=1))

    with pytest.raises(ModelError) as raised:
        await provider.complete([{"role": "user", "content": "hi"}])

    assert str(raised.value) == "could not connect to the model endpoint after 2 attempts"


async def test_calls_share_one_connection_pool_that_aclose_closes(httpserver: HTTPServer) -> None:
    httpserver.expect_request(GENERATION, method="POST").respond_with_json(generation("ok"))
    provider = build_provider(dashscope_settings(httpserver.url_for(API_ROOT)))

    await provider.complete([{"role": "user", "content": "one"}])
    session = await get_shared_aio_session()
    await provider.complete([{"role": "user", "content": "two"}])
    assert await get_shared_aio_session() is session and not session.closed

    await provider.aclose()

    assert session.closed
    assert DASHSCOPE.sent_messages(httpserver) == [
        [{"role": "user", "content": "one"}],
        [{"role": "user", "content": "two"}],
    ]
