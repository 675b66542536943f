"""A real HTTP server speaking DashScope's native text-generation API (pytest-httpserver): responses and requests.

The shapes are those of `POST {api root}/services/aigc/text-generation/generation` with
`result_format="message"`: a JSON body, or with `X-DashScope-SSE: enable` server-sent events whose `data:` lines
carry the same JSON (an `event:error` event carries `{"code", "message"}` instead).
"""

from __future__ import annotations

import json
from typing import Any

from werkzeug import Request, Response

API_ROOT = "/api/v1"
GENERATION = f"{API_ROOT}/services/aigc/text-generation/generation"


def generation(content: str, *, input_tokens: int = 5, output_tokens: int = 2, finish: str = "stop") -> dict[str, Any]:
    return {
        "output": {"choices": [{"finish_reason": finish, "message": {"role": "assistant", "content": content}}]},
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        },
        "request_id": "req-1",
    }


def failure(code: str, message: str) -> dict[str, Any]:
    """The body of an error response (any status but 200)."""
    return {"code": code, "message": message, "request_id": "req-1"}


def _event(number: int, name: str, status: int, data: dict[str, Any]) -> str:
    return f"id:{number}\nevent:{name}\n:HTTP_STATUS/{status}\ndata:{json.dumps(data)}\n\n"


def sse(*pieces: str, input_tokens: int = 5) -> str:
    """An incremental stream: one result event per piece, the last one finished; each event's usage counts the
    answer so far (one token per piece), as DashScope's do."""
    return "".join(
        _event(
            number,
            "result",
            200,
            generation(
                piece,
                input_tokens=input_tokens,
                output_tokens=number,
                finish="stop" if number == len(pieces) else "null",
            ),
        )
        for number, piece in enumerate(pieces, start=1)
    )


def sse_failing_after(*pieces: str, code: str = "InternalError", message: str = "boom") -> str:
    """A stream that sends `pieces`, then an error event."""
    return sse(*pieces) + _event(len(pieces) + 1, "error", 500, failure(code, message))


def echo_last_user_message(request: Request) -> Response:
    """A model that answers `echo: <the newest user message>`."""
    messages = json.loads(request.get_data())["input"]["messages"]
    last = next(m["content"] for m in reversed(messages) if m["role"] == "user")
    return Response(json.dumps(generation(f"echo: {last}")), content_type="application/json")
