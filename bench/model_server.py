"""A model endpoint for the real-protocol figures: it echoes the newest user message, in OpenAI's chat completions
(`/v1/chat/completions`) or DashScope's native text generation (`/api/v1/services/aigc/text-generation/generation`).

It answers after the number of milliseconds its model name ends with (`LLM_MODEL=echo-1000`: one second), so one
server serves an instant and a slow model. It counts tokens as words, as a real endpoint reports usage.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


class Message(BaseModel):
    role: str
    content: str


class Completion(BaseModel):
    model: str
    messages: list[Message]


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


@app.post("/v1/chat/completions")
async def complete(body: Completion) -> dict[str, Any]:
    said = await echo(body.model, body.messages)
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 0,
        "model": body.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": said.answer}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": said.prompt_tokens,
            "completion_tokens": said.completion_tokens,
            "total_tokens": said.prompt_tokens + said.completion_tokens,
        },
    }


class GenerationInput(BaseModel):
    messages: list[Message]


class Generation(BaseModel):
    model: str
    input: GenerationInput


@app.post("/api/v1/services/aigc/text-generation/generation")
async def generate(body: Generation) -> dict[str, Any]:
    """The same echo in DashScope's native protocol (result_format="message")."""
    said = await echo(body.model, body.input.messages)
    return {
        "output": {"choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": said.answer}}]},
        "usage": {
            "input_tokens": said.prompt_tokens,
            "output_tokens": said.completion_tokens,
            "total_tokens": said.prompt_tokens + said.completion_tokens,
        },
        "request_id": "bench",
    }
