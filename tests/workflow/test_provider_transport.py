"""What both remote providers do the same way on the wire: the conversation sent, a refused key, an empty answer,
unreachable and silent endpoints, proxies, private CAs and Retry-After; each test runs against a real local server
speaking each protocol."""

import logging
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from convoflow.workflow import ChatMessage, ConversationWorkflow, ModelError, PriorTurn
from tests.utils.model_protocols import API_KEY, PROTOCOLS, ModelProtocol
from tests.utils.model_server import sent_bodies
from tests.utils.providers import provider_for, stream_until_error
from tests.utils.service_logging import service_logging

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("closing_providers")]

HI: list[ChatMessage] = [{"role": "user", "content": "hi"}]


@pytest.fixture(params=PROTOCOLS, ids=lambda protocol: protocol.provider)
def protocol(request: pytest.FixtureRequest) -> ModelProtocol:
    return request.param  # type: ignore[no-any-return]


async def test_run_sends_system_prompt_prior_turns_in_order_and_new_input(
    httpserver: HTTPServer, protocol: ModelProtocol
) -> None:
    httpserver.expect_request(protocol.path, method="POST").respond_with_json(protocol.answer("Paris."))
    settings = protocol.settings(httpserver.url_for(protocol.root), system_prompt="You are terse.")
    workflow = ConversationWorkflow(provider_for(settings), settings)

    answer = await workflow.run(
        "And of France?",
        [PriorTurn("Capital of Italy?", "Rome."), PriorTurn("Spain?", "Madrid.")],
    )

    assert (answer.answer, answer.model, answer.provider) == ("Paris.", "test-model", protocol.provider)
    [body] = sent_bodies(httpserver)
    assert body["model"] == "test-model"
    assert protocol.messages_of(body) == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Capital of Italy?"},
        {"role": "assistant", "content": "Rome."},
        {"role": "user", "content": "Spain?"},
        {"role": "assistant", "content": "Madrid."},
        {"role": "user", "content": "And of France?"},
    ]
    [(request, _)] = httpserver.log
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"


async def test_stream_401_raises_model_error_without_retrying(httpserver: HTTPServer, protocol: ModelProtocol) -> None:
    httpserver.expect_request(protocol.path, method="POST").respond_with_json(
        protocol.failure("invalid_api_key"), status=401
    )
    provider = provider_for(protocol.settings(httpserver.url_for(protocol.root)))

    with pytest.raises(ModelError, match="HTTP 401"):
        async for _ in provider.stream(HI):
            pass

    assert len(httpserver.log) == 1


async def test_empty_answer_raises_model_error(httpserver: HTTPServer, protocol: ModelProtocol) -> None:
    httpserver.expect_request(protocol.path, method="POST").respond_with_json(protocol.answer(""))
    provider = provider_for(protocol.settings(httpserver.url_for(protocol.root)))

    with pytest.raises(ModelError, match="empty answer"):
        await provider.complete(HI)


@pytest.fixture
def logging_as_in_the_services(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("DASHSCOPE_LOGGING_LEVEL", raising=False)
    with service_logging():
        yield


@pytest.mark.usefixtures("logging_as_in_the_services")
async def test_an_unreachable_endpoint_is_retried_and_each_retry_is_one_warning_that_says_it_was_refused(
    protocol: ModelProtocol, caplog: pytest.LogCaptureFixture
) -> None:
    # A port that was free a moment ago and has no listener now.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = provider_for(protocol.settings(f"http://127.0.0.1:{port}{protocol.root}", llm_max_retries=1))

    with pytest.raises(ModelError) as raised:
        await provider.complete(HI)

    assert str(raised.value) == "could not connect to the model endpoint after 2 attempts"
    # What failed underneath, for the operators' log (the client sees only the message above).
    assert raised.value.detail.startswith("ConnectionRefusedError: [Errno 111] Connect call failed")
    # One warning for the retry, and nothing louder: the SDKs' own per-attempt errors (DashScope's come with a
    # traceback each) would page operators for failures that were retried.
    [retry] = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert retry.levelno == logging.WARNING
    assert retry.getMessage().startswith(
        f"{protocol.provider} model attempt 1 of 2 failed: could not connect to the model endpoint "
        "(ConnectionRefusedError: [Errno 111] Connect call failed"
    )


async def test_a_model_that_never_answers_is_retried_and_then_reported_as_timed_out(protocol: ModelProtocol) -> None:
    # A listener that takes connections (the kernel's backlog) and never reads or answers them.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        base_url = f"http://127.0.0.1:{port}{protocol.root}"
        provider = provider_for(protocol.settings(base_url, llm_timeout_seconds=0.2, llm_max_retries=1))

        with pytest.raises(ModelError) as raised:
            await provider.complete(HI)

    assert str(raised.value) == "model endpoint timed out after 2 attempts"
    assert raised.value.detail == ""


async def test_a_stream_that_stalls_after_its_first_delta_ends_with_a_timeout_and_no_second_call(
    httpserver: HTTPServer, protocol: ModelProtocol
) -> None:
    first, rest = protocol.stream("Half"), protocol.stream(" an answer")
    released = threading.Event()

    def stalling(_request: Request) -> Response:
        def events() -> Iterator[str]:
            yield first.split("data: [DONE]")[0]  # one delta (and, for OpenAI, its usage chunk)
            released.wait(10)  # silent for longer than LLM_TIMEOUT_SECONDS
            yield rest

        return Response(events(), content_type="text/event-stream")

    httpserver.expect_request(protocol.path, method="POST").respond_with_handler(stalling)
    provider = provider_for(protocol.settings(httpserver.url_for(protocol.root), llm_timeout_seconds=0.5))
    try:
        received, error = await stream_until_error(provider, HI)
    finally:
        released.set()  # the test server answers one request at a time: let it finish this one

    assert received == ["Half"]
    assert str(error) == "model endpoint timed out mid-stream"
    assert len(httpserver.log) == 1


async def test_calls_go_through_the_proxy_the_environment_names(proxy: HTTPServer, protocol: ModelProtocol) -> None:
    # model.invalid cannot resolve: only the proxy can take the request, addressed to the model's host.
    proxy.expect_request(protocol.path, method="POST").respond_with_json(protocol.answer("Via the proxy."))
    provider = provider_for(protocol.settings(f"http://model.invalid{protocol.root}", llm_max_retries=0))

    assert await provider.complete(HI) == "Via the proxy."
    [(request, _)] = proxy.log
    assert request.headers["Host"] == "model.invalid"


async def test_a_model_behind_a_private_ca_is_refused_until_ssl_cert_file_names_the_ca(
    private_ca_server: tuple[HTTPServer, Path], trust: Callable[[Path | None], None], protocol: ModelProtocol
) -> None:
    server, ca = private_ca_server
    server.expect_request(protocol.path, method="POST").respond_with_json(protocol.answer("Trusted."))
    settings = protocol.settings(server.url_for(protocol.root), llm_max_retries=0)

    trust(None)
    with pytest.raises(ModelError, match="could not connect") as refused:
        await provider_for(settings).complete(HI)
    assert "CERTIFICATE_VERIFY_FAILED" in refused.value.detail
    trust(ca)
    assert await provider_for(settings).complete(HI) == "Trusted."
    assert len(server.log) == 1


@pytest.mark.parametrize("header", ["retry-after-ms", "Retry-After"])
async def test_a_429_asking_for_a_longer_pause_than_llm_retry_max_seconds_is_not_retried(
    httpserver: HTTPServer, protocol: ModelProtocol, header: str
) -> None:
    pause = "30000" if header == "retry-after-ms" else "30"
    httpserver.expect_request(protocol.path, method="POST").respond_with_json(
        protocol.failure("rate_limit_exceeded"), status=429, headers={header: pause}
    )
    provider = provider_for(protocol.settings(httpserver.url_for(protocol.root)))  # pauses of at most 0.05 s

    with pytest.raises(ModelError) as raised:
        await provider.complete(HI)

    assert raised.value.log_text == "model endpoint returned HTTP 429 (code rate_limit_exceeded)"
    assert len(httpserver.log) == 1


async def test_a_429_asking_for_a_short_pause_is_retried(httpserver: HTTPServer, protocol: ModelProtocol) -> None:
    httpserver.expect_oneshot_request(protocol.path, method="POST").respond_with_json(
        protocol.failure("rate_limit_exceeded"), status=429, headers={"Retry-After": "0.01"}
    )
    httpserver.expect_request(protocol.path, method="POST").respond_with_json(protocol.answer("After the pause."))
    provider = provider_for(protocol.settings(httpserver.url_for(protocol.root)))

    assert await provider.complete(HI) == "After the pause."
    assert len(httpserver.log) == 2
