"""The DashScope provider against a real local HTTP server speaking DashScope's native text-generation API."""

import asyncio
import gc
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from prometheus_client import REGISTRY
from pytest_httpserver import HTTPServer

from convoflow.workflow import ModelError, build_provider
from tests.utils.dashscope_server import (
    API_ROOT,
    GENERATION,
    failure,
    generation,
    sse,
    sse_failing_after,
)
from tests.utils.model_protocols import API_KEY, DASHSCOPE
from tests.utils.model_server import sent_bodies
from tests.utils.providers import provider_for, stream_until_error

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("closing_providers")]


def tokens(kind: str) -> float:
    labels = {"provider": "dashscope", "model": "test-model", "kind": kind, "counted_by": "usage"}
    return REGISTRY.get_sample_value("convoflow_model_tokens_total", labels) or 0.0


async def test_complete_returns_the_answer_and_counts_the_tokens_the_api_reports(httpserver: HTTPServer) -> None:
    httpserver.expect_request(GENERATION, method="POST").respond_with_json(
        generation("Hello there.", input_tokens=11, output_tokens=3)
    )
    provider = provider_for(DASHSCOPE.settings(httpserver.url_for(API_ROOT)))
    prompt, completion = tokens("prompt"), tokens("completion")

    assert await provider.complete([{"role": "user", "content": "hi"}]) == "Hello there."
    assert (tokens("prompt") - prompt, tokens("completion") - completion) == (11, 3)
    [body] = sent_bodies(httpserver)
    assert body["parameters"] == {"result_format": "message"}


async def test_stream_asks_for_incremental_events_and_yields_each_delta(httpserver: HTTPServer) -> None:
    httpserver.expect_request(GENERATION, method="POST").respond_with_data(
        sse("Hel", "lo ", "world.", input_tokens=9), content_type="text/event-stream"
    )
    provider = provider_for(DASHSCOPE.settings(httpserver.url_for(API_ROOT)))
    prompt, completion = tokens("prompt"), tokens("completion")

    deltas = [delta async for delta in provider.stream([{"role": "user", "content": "hi"}])]

    assert deltas == ["Hel", "lo ", "world."]
    # The last event's usage covers the whole answer.
    assert (tokens("prompt") - prompt, tokens("completion") - completion) == (9, 3)
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
    provider = provider_for(DASHSCOPE.settings(httpserver.url_for(API_ROOT)))

    assert await provider.complete([{"role": "user", "content": "hi"}]) == "Recovered."
    assert len(httpserver.log) == 3


async def test_stream_retries_after_a_5xx_before_anything_was_yielded(httpserver: HTTPServer) -> None:
    # A gateway's error page: not JSON.
    httpserver.expect_oneshot_request(GENERATION, method="POST").respond_with_data("bad gateway", status=502)
    httpserver.expect_request(GENERATION, method="POST").respond_with_data(
        sse("Back ", "again."), content_type="text/event-stream"
    )
    provider = provider_for(DASHSCOPE.settings(httpserver.url_for(API_ROOT)))

    deltas = [delta async for delta in provider.stream([{"role": "user", "content": "hi"}])]

    assert "".join(deltas) == "Back again."
    assert len(httpserver.log) == 2


async def test_an_error_event_mid_stream_ends_it_with_model_error_and_no_second_call(httpserver: HTTPServer) -> None:
    httpserver.expect_request(GENERATION, method="POST").respond_with_data(
        sse_failing_after("Half an ", code="InternalError", message="my private question leaked?"),
        content_type="text/event-stream",
    )
    provider = provider_for(DASHSCOPE.settings(httpserver.url_for(API_ROOT)))
    received, error = await stream_until_error(provider, [{"role": "user", "content": "my private question"}])

    assert received == ["Half an "]
    # The SDK reads no status from an error event and reports 400.
    assert str(error) == "model endpoint returned HTTP 400 mid-stream"
    assert error.detail == "code InternalError"
    assert error.provider == "dashscope"
    assert len(httpserver.log) == 1


async def test_persistent_500_raises_model_error_after_all_attempts(httpserver: HTTPServer) -> None:
    httpserver.expect_request(GENERATION, method="POST").respond_with_json(failure("InternalError", "boom"), status=500)
    provider = provider_for(DASHSCOPE.settings(httpserver.url_for(API_ROOT), llm_max_retries=2))

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
    provider = provider_for(DASHSCOPE.settings(httpserver.url_for(API_ROOT)))

    with pytest.raises(ModelError) as raised:
        await provider.complete([{"role": "user", "content": "my private question"}])

    assert str(raised.value) == f"model endpoint returned HTTP {status}"
    assert API_KEY not in str(raised.value)
    assert raised.value.detail == "code InvalidApiKey"
    assert len(httpserver.log) == 1


@asynccontextmanager
async def keep_alive_model(
    generate: Callable[[web.Request], Awaitable[web.Response]],
) -> AsyncIterator[str]:
    """A DashScope endpoint on aiohttp's server (which keeps connections open between requests, as a real
    endpoint does); its API root."""
    app = web.Application()
    app.router.add_post(GENERATION, generate)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    listener = socket.create_server(("127.0.0.1", 0))
    await web.SockSite(runner, listener).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}{API_ROOT}"
    finally:
        await runner.cleanup()


def client_address(request: web.Request) -> tuple[str, int]:
    assert request.transport is not None
    host, port = request.transport.get_extra_info("peername")[:2]
    return host, port


HELD_CALLS = 150


async def test_more_calls_are_in_flight_at_once_than_aiohttps_default_pool_of_100() -> None:
    arrived: list[tuple[str, int]] = []
    everyone_here = asyncio.Event()

    async def hold_until_everyone_is_here(request: web.Request) -> web.Response:
        arrived.append(client_address(request))
        if len(arrived) == HELD_CALLS:
            everyone_here.set()
        await everyone_here.wait()
        return web.json_response(generation("ok"))

    async with keep_alive_model(hold_until_everyone_is_here) as api_root:
        provider = provider_for(DASHSCOPE.settings(api_root, llm_max_retries=0, llm_timeout_seconds=60))
        # With a pool of 100 the 101st call would never reach the model, and no call would be answered.
        calls = [provider.complete([{"role": "user", "content": f"call {n}"}]) for n in range(HELD_CALLS)]
        try:
            answers = await asyncio.wait_for(asyncio.gather(*calls), timeout=30)
        finally:
            everyone_here.set()

    assert answers == ["ok"] * HELD_CALLS
    assert len(set(arrived)) == HELD_CALLS


async def test_calls_one_after_another_reuse_one_connection() -> None:
    clients: list[tuple[str, int]] = []

    async def answer(request: web.Request) -> web.Response:
        clients.append(client_address(request))
        return web.json_response(generation("ok"))

    async with keep_alive_model(answer) as api_root:
        provider = provider_for(DASHSCOPE.settings(api_root))
        for n in range(3):
            assert await provider.complete([{"role": "user", "content": f"call {n}"}]) == "ok"

    assert len(clients) == 3 and len(set(clients)) == 1


async def test_aclose_leaves_no_unclosed_session_behind(httpserver: HTTPServer) -> None:
    httpserver.expect_request(GENERATION, method="POST").respond_with_json(generation("ok"))
    loop = asyncio.get_running_loop()
    reported: list[str] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(str(context.get("message"))))
    try:
        provider = build_provider(DASHSCOPE.settings(httpserver.url_for(API_ROOT)))
        await provider.complete([{"role": "user", "content": "hi"}])
        await provider.aclose()
        del provider
        gc.collect()
    finally:
        loop.set_exception_handler(None)

    assert reported == []
