"""A model endpoint for the real-protocol figures: it echoes the newest user message, in OpenAI's chat completions
(`/v1/chat/completions`) or DashScope's native text generation (`/api/v1/services/aigc/text-generation/generation`).

It answers after the number of milliseconds its model name ends with (`LLM_MODEL=echo-1000`: one second), so one
server serves an instant and a slow model. It counts tokens as words, as a real endpoint reports usage. Asked to
stream, it sends STREAMED_WORDS chunks of one word each (the echo, then filler): an answer of a typical length.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Response
from pydantic import BaseModel

# The bodies are those the tests' model servers answer with: one description of each protocol.
from tests.utils import dashscope_server, model_server

app = FastAPI()

STREAMED_WORDS = 200


class Message(BaseModel):
    role: str
    content: str


class Completion(BaseModel):
    model: str
    messages: list[Message]
    stream: bool = False


def delay_seconds(model: str) -> float:
    """`echo-250` answers after 0.25 s; a name without a number at the end answers at once."""
    _name, _dash, digits = model.rpartition("-")
    return int(digits) / 1000 if digits.isdigit() else 0.0


@dataclass(frozen=True)
class Echo:
    answer: str
    prompt_tokens: int
    completion_tokens: int


async def echo(model: str, messages: list[Message]) -> Echo:
    """After the model's delay, `echo: <the newest user message>`, with the tokens counted as words."""
    delay = delay_seconds(model)
    if delay:
        await asyncio.sleep(delay)
    question = next((m.content for m in reversed(messages) if m.role == "user"), "")
    answer = f"echo: {question}"
    return Echo(answer, sum(len(m.content.split()) for m in messages), len(answer.split()))


def streamed(answer: str) -> list[str]:
    """The pieces of a streamed answer: `answer` word by word, then filler words, STREAMED_WORDS pieces in all."""
    words = answer.split()
    words += ["more"] * (STREAMED_WORDS - len(words))
    return [words[0], *(" " + word for word in words[1:])]


def event_stream(events: str) -> Response:
    return Response(events, media_type="text/event-stream")


@app.post("/v1/chat/completions", response_model=None)
async def complete(body: Completion) -> dict[str, Any] | Response:
    said = await echo(body.model, body.messages)
    if body.stream:  # with the usage chunk that stream_options.include_usage asks for
        pieces = streamed(said.answer)
        return event_stream(model_server.sse(*pieces, usage=(said.prompt_tokens, len(pieces))))
    return model_server.completion(said.answer, usage=(said.prompt_tokens, said.completion_tokens))


class GenerationInput(BaseModel):
    messages: list[Message]


class Generation(BaseModel):
    model: str
    input: GenerationInput
    parameters: dict[str, Any] = {}


@app.post("/api/v1/services/aigc/text-generation/generation", response_model=None)
async def generate(body: Generation) -> dict[str, Any] | Response:
    """The same echo in DashScope's native protocol (result_format="message"); incremental events when streamed."""
    said = await echo(body.model, body.input.messages)
    if body.parameters.get("incremental_output"):
        return event_stream(dashscope_server.sse(*streamed(said.answer), input_tokens=said.prompt_tokens))
    return dashscope_server.generation(
        said.answer, input_tokens=said.prompt_tokens, output_tokens=said.completion_tokens
    )
