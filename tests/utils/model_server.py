"""A real HTTP server speaking OpenAI chat completions (pytest-httpserver): responses and what it was sent."""

from __future__ import annotations

import json
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

COMPLETIONS = "/v1/chat/completions"


def completion(content: str, usage: tuple[int, int] | None = None) -> dict[str, Any]:
    """A whole answer; with the (prompt, completion) token usage when given."""
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "test-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
    }
    if usage is not None:
        body["usage"] = _usage(*usage)
    return body


def sse(*pieces: str, usage: tuple[int, int] | None = (5, 3)) -> str:
    """A streamed completion: one chunk per piece, then (as when `stream_options.include_usage` asked for it) a
    chunk without choices carrying the (prompt, completion) token usage, then [DONE]."""
    chunks: list[dict[str, Any]] = [
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "test-model",
            "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
        }
        for piece in pieces
    ]
    if usage is not None:
        prompt, completion = usage
        chunks.append(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "test-model",
                "choices": [],
                "usage": _usage(prompt, completion),
            }
        )
    return "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks) + "data: [DONE]\n\n"


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def sent_bodies(httpserver: HTTPServer) -> list[dict[str, Any]]:
    return [json.loads(request.get_data()) for request, _ in httpserver.log]


def echo_last_user_message(request: Request) -> Response:
    """A model that answers `echo: <the newest user message>`."""
    messages = json.loads(request.get_data())["messages"]
    last = next(m["content"] for m in reversed(messages) if m["role"] == "user")
    return Response(json.dumps(completion(f"echo: {last}")), content_type="application/json")
