"""The OpenAI-compatible provider against a real local HTTP server speaking the chat-completions protocol."""

import json
from collections.abc import AsyncIterator
from typing import cast

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from prometheus_client import REGISTRY
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from convoflow.workflow import ModelError
from convoflow.workflow.providers.base import ChatMessage
from tests.utils.model_protocols import API_KEY, OPENAI
from tests.utils.model_server import COMPLETIONS, completion, sent_bodies, sse
from tests.utils.providers import provider_for, stream_until_error

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("closing_providers")]


def tokens(kind: str) -> float:
    labels = {"provider": "openai", "model": "test-model", "kind": kind, "counted_by": "usage"}
    return REGISTRY.get_sample_value("convoflow_model_tokens_total", labels) or 0.0


async def test_complete_returns_the_answer_text(httpserver: HTTPServer) -> None:
    httpserver.expect_request(COMPLETIONS, method="POST").respond_with_json(completion("Hello there."))
    provider = provider_for(OPENAI.settings(httpserver.url_for("/v1")))

    assert await provider.complete([{"role": "user", "content": "hi"}]) == "Hello there."


async def test_stream_yields_the_sse_deltas(httpserver: HTTPServer) -> None:
    httpserver.expect_request(COMPLETIONS, method="POST").respond_with_data(
        sse("Hel", "lo ", "world."), content_type="text/event-stream"
    )
    provider = provider_for(OPENAI.settings(httpserver.url_for("/v1")))

    prompt, completion = tokens("prompt"), tokens("completion")

    deltas = [delta async for delta in provider.stream([{"role": "user", "content": "hi"}])]

    assert deltas == ["Hel", "lo ", "world."]
    [body] = sent_bodies(httpserver)
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    # The usage chunk after the deltas.
    assert (tokens("prompt") - prompt, tokens("completion") - completion) == (5, 3)


async def test_stream_asks_for_no_usage_when_openai_stream_usage_is_off(httpserver: HTTPServer) -> None:
    httpserver.expect_request(COMPLETIONS, method="POST").respond_with_data(
        sse("Hi.", usage=None), content_type="text/event-stream"
    )
    provider = provider_for(OPENAI.settings(httpserver.url_for("/v1"), openai_stream_usage=False))

    assert [delta async for delta in provider.stream([{"role": "user", "content": "hi"}])] == ["Hi."]
    [body] = sent_bodies(httpserver)
    assert "stream_options" not in body


def rejecting_stream_options(request: Request) -> Response:
    """A strict endpoint (an older Azure api-version): 400 for a request that carries stream_options."""
    if "stream_options" in json.loads(request.get_data()):
        body = {"error": {"message": "Unrecognized request argument supplied: stream_options", "code": None}}
        return Response(json.dumps(body), status=400, content_type="application/json")
    return Response(sse("Hi.", usage=None), content_type="text/event-stream")


async def test_an_endpoint_that_rejects_stream_options_is_asked_again_without_them_and_never_again(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    httpserver.expect_request(COMPLETIONS, method="POST").respond_with_handler(rejecting_stream_options)
    provider = provider_for(OPENAI.settings(httpserver.url_for("/v1"), llm_max_retries=0))

    first = [delta async for delta in provider.stream([{"role": "user", "content": "one"}])]
    second = [delta async for delta in provider.stream([{"role": "user", "content": "two"}])]

    assert first == second == ["Hi."]
    assert ["stream_options" in body for body in sent_bodies(httpserver)] == [True, False, False]
    assert "the model endpoint rejects stream_options" in caplog.text


CONVERSATION: list[ChatMessage] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": 'Qu\u00e9 tal? \u2713 "quoted"\n'},
    {"role": "assistant", "content": "Bien. \U0001f600"},
    {"role": "user", "content": "and now?"},
]
TYPED_CONVERSATION = cast("list[ChatCompletionMessageParam]", CONVERSATION)


@pytest.fixture
async def typed(httpserver: HTTPServer) -> AsyncIterator[openai.AsyncOpenAI]:
    """The SDK on its own, sent typed messages: the requests the provider's are compared with."""
    async with openai.AsyncOpenAI(base_url=httpserver.url_for("/v1"), api_key=API_KEY, max_retries=0) as client:
        yield client


async def test_complete_sends_the_request_the_clients_typed_create_sends(
    httpserver: HTTPServer, typed: openai.AsyncOpenAI
) -> None:
    # The provider builds the body itself and sends it with the client's untyped `post`.
    httpserver.expect_request(COMPLETIONS, method="POST").respond_with_json(completion("ok"))
    provider = provider_for(OPENAI.settings(httpserver.url_for("/v1")))

    await provider.complete(CONVERSATION)
    await typed.chat.completions.create(model="test-model", messages=TYPED_CONVERSATION)

    (ours, _), (theirs, _) = httpserver.log
    assert json.loads(ours.get_data()) == json.loads(theirs.get_data())
    assert ours.headers["Authorization"] == theirs.headers["Authorization"] == f"Bearer {API_KEY}"
    assert json.loads(ours.get_data())["messages"] == CONVERSATION


async def test_stream_sends_the_request_the_clients_typed_create_sends(
    httpserver: HTTPServer, typed: openai.AsyncOpenAI
) -> None:
    httpserver.expect_request(COMPLETIONS, method="POST").respond_with_data(sse("ok"), content_type="text/event-stream")
    provider = provider_for(OPENAI.settings(httpserver.url_for("/v1")))

    assert [delta async for delta in provider.stream(CONVERSATION)] == ["ok"]
    chunks = await typed.chat.completions.create(
        model="test-model",
        messages=TYPED_CONVERSATION,
        stream=True,
        stream_options={"include_usage": True},
    )
    async with chunks:
        [chunk async for chunk in chunks]

    (ours, _), (theirs, _) = httpserver.log
    assert json.loads(ours.get_data()) == json.loads(theirs.get_data())
    assert ours.headers["Authorization"] == theirs.headers["Authorization"] == f"Bearer {API_KEY}"


@pytest.mark.parametrize(
    "body",
    [
        {"choices": []},
        {"choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": []}}]},
        {"choices": "not a list"},
    ],
    ids=["no-choices", "no-content", "odd-choices"],
)
async def test_a_completion_without_text_in_it_is_an_empty_answer(httpserver: HTTPServer, body: object) -> None:
    httpserver.expect_request(COMPLETIONS, method="POST").respond_with_json(body)
    provider = provider_for(OPENAI.settings(httpserver.url_for("/v1")))

    with pytest.raises(ModelError) as raised:
        await provider.complete([{"role": "user", "content": "hi"}])

    assert str(raised.value) == "model returned an empty answer"
    assert len(httpserver.log) == 1


async def test_a_completion_labelled_as_plain_text_is_still_read(httpserver: HTTPServer) -> None:
    body = json.dumps(completion("Plain."))
    httpserver.expect_request(COMPLETIONS, method="POST").respond_with_data(body, content_type="text/plain")
    provider = provider_for(OPENAI.settings(httpserver.url_for("/v1")))

    assert await provider.complete([{"role": "user", "content": "hi"}]) == "Plain."


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("<html>proxy login</html>", "text/html"),
        ("<html>proxy login</html>", "application/json"),
        ('["not", "an", "object"]', "application/json"),
    ],
    ids=["html", "html-labelled-json", "json-array"],
)
async def test_a_200_that_is_not_a_completion_is_a_malformed_response_not_retried(
    httpserver: HTTPServer, body: str, content_type: str
) -> None:
    httpserver.expect_request(COMPLETIONS, method="POST").respond_with_data(body, content_type=content_type)
    provider = provider_for(OPENAI.settings(httpserver.url_for("/v1")))

    with pytest.raises(ModelError) as raised:
        await provider.complete([{"role": "user", "content": "hi"}])

    assert str(raised.value) == "model endpoint returned a malformed response"
    assert len(httpserver.log) == 1


@pytest.mark.parametrize("first", [True, False], ids=["first-chunk", "mid-stream"])
async def test_a_stream_chunk_that_is_not_json_ends_the_stream_with_a_model_error(
    httpserver: HTTPServer, first: bool
) -> None:
    good = sse("Hel", usage=None).split("data: [DONE]")[0]
    events = ("" if first else good) + "data: <html>oops</html>\n\n" + "data: [DONE]\n\n"
    httpserver.expect_request(COMPLETIONS, method="POST").respond_with_data(events, content_type="text/event-stream")
    provider = provider_for(OPENAI.settings(httpserver.url_for("/v1")))
    received, error = await stream_until_error(provider, [{"role": "user", "content": "hi"}])

    assert str(error) == "model endpoint returned a malformed response" + ("" if first else " mid-stream")
    assert received == ([] if first else ["Hel"])
    assert len(httpserver.log) == 1


async def test_an_error_event_mid_stream_ends_it_with_model_error_and_no_second_call(httpserver: HTTPServer) -> None:
    event = {"error": {"message": "my private question was too long", "type": "server_error", "code": "overloaded"}}
    events = sse("Half an ", usage=None).split("data: [DONE]")[0] + f"data: {json.dumps(event)}\n\n"
    httpserver.expect_request(COMPLETIONS, method="POST").respond_with_data(events, content_type="text/event-stream")
    provider = provider_for(OPENAI.settings(httpserver.url_for("/v1")))
    received, error = await stream_until_error(provider, [{"role": "user", "content": "my private question"}])

    assert received == ["Half an "]
    assert str(error) == "model endpoint sent an error event mid-stream"
    assert error.detail == "code overloaded"
    assert len(httpserver.log) == 1


async def test_complete_retries_after_503_and_then_answers(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_oneshot_request(COMPLETIONS, method="POST").respond_with_json({"error": {}}, status=503)
    httpserver.expect_request(COMPLETIONS, method="POST").respond_with_json(completion("Recovered."))
    provider = provider_for(OPENAI.settings(httpserver.url_for("/v1")))

    assert await provider.complete([{"role": "user", "content": "hi"}]) == "Recovered."
    assert len(httpserver.log) == 2


async def test_stream_retries_after_503_before_anything_was_yielded(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_oneshot_request(COMPLETIONS, method="POST").respond_with_json({"error": {}}, status=503)
    httpserver.expect_request(COMPLETIONS, method="POST").respond_with_data(
        sse("Back ", "again."), content_type="text/event-stream"
    )
    provider = provider_for(OPENAI.settings(httpserver.url_for("/v1")))

    deltas = [delta async for delta in provider.stream([{"role": "user", "content": "hi"}])]

    assert "".join(deltas) == "Back again."
    assert len(httpserver.log) == 2


async def test_persistent_500_raises_model_error_after_all_attempts(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_request(COMPLETIONS, method="POST").respond_with_json({"error": {}}, status=500)
    provider = provider_for(OPENAI.settings(httpserver.url_for("/v1"), llm_max_retries=2))

    with pytest.raises(ModelError) as raised:
        await provider.complete([{"role": "user", "content": "my private question"}])

    assert str(raised.value) == "model endpoint returned HTTP 500 after 3 attempts"
    assert raised.value.provider == "openai"
    assert len(httpserver.log) == 3


async def test_401_raises_model_error_without_retrying(httpserver: HTTPServer) -> None:
    httpserver.expect_request(COMPLETIONS, method="POST").respond_with_json(
        {
            "error": {
                "message": f"Incorrect API key provided: {API_KEY}",
                "type": "invalid_request_error",
            }
        },
        status=401,
    )
    provider = provider_for(OPENAI.settings(httpserver.url_for("/v1")))

    with pytest.raises(ModelError) as raised:
        await provider.complete([{"role": "user", "content": "my private question"}])

    assert str(raised.value) == "model endpoint returned HTTP 401"
    assert API_KEY not in str(raised.value)
    assert raised.value.detail == ""
    assert len(httpserver.log) == 1


@pytest.mark.parametrize(
    ("code", "detail"),
    [("insufficient_quota", "code insufficient_quota"), ("your question 'my secret' was refused", "")],
)
async def test_an_error_code_is_the_detail_for_the_log_and_free_text_never_is(
    httpserver: HTTPServer, code: str, detail: str
) -> None:
    httpserver.expect_request(COMPLETIONS, method="POST").respond_with_json(
        {"error": {"message": "You exceeded your current quota.", "type": "insufficient_quota", "code": code}},
        status=429,
    )
    provider = provider_for(OPENAI.settings(httpserver.url_for("/v1"), llm_max_retries=0))

    with pytest.raises(ModelError) as raised:
        await provider.complete([{"role": "user", "content": "hi"}])

    assert str(raised.value) == "model endpoint returned HTTP 429"
    assert raised.value.detail == detail
    assert raised.value.log_text == "model endpoint returned HTTP 429" + (f" ({detail})" if detail else "")
