"""A text/event-stream response that notices a client leaving and always closes its event source."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from convoflow.jsoncodec import dumps
from convoflow.services.streaming import StreamEvent

logger = logging.getLogger(__name__)

INTERNAL_ERROR = {"error": "internal_error", "message": "internal server error"}


def format_event(event: StreamEvent) -> bytes:
    """`event: <name>` and one `data:` line of compact JSON (JSON escapes newlines, so one line suffices)."""
    return b"event: " + event.event.encode() + b"\ndata: " + dumps(event.data) + b"\n\n"


class EventStreamResponse(Response):
    """Sends `events` as server-sent events, with a comment line (`: ping`) as keep-alive every `ping_seconds`
    (STREAM_PING_SECONDS), so that proxies and clients do not drop a stream whose model is slow to write.

    A client that disconnects is noticed by listening for `http.disconnect` (uvicorn drops writes to a
    closed connection silently, so sending alone would not tell). The event source is then cancelled
    and closed before this response returns, so its cleanup (saving an interrupted turn) runs now,
    not whenever the garbage collector finalises it.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        events: AsyncGenerator[StreamEvent, None],
        *,
        ping_seconds: float,
        headers: dict[str, str] | None = None,
    ) -> None:
        # Like StreamingResponse: no body, so no Content-Length; X-Accel-Buffering keeps nginx from buffering.
        self.status_code = 200
        self.background = None
        self.init_headers({"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})})
        self.events = events
        self.ping_seconds = ping_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Taken once per event; uncontended (a keep-alive ping is rare) it must not cost a trip through the event
        # loop, which anyio's default acquire makes for every event: with orjson for the data, that took a 200-event
        # answer from 14.5 to 7-8 ms of the API's CPU under 32 concurrent streams (bench/README.md).
        lock = anyio.Lock(fast_acquire=True)

        async def send_body(chunk: bytes) -> None:
            async with lock:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})

        async with aclosing(self.events) as events, anyio.create_task_group() as group:

            async def watch_disconnect() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                group.cancel_scope.cancel()

            async def keep_alive() -> None:
                while True:
                    await anyio.sleep(self.ping_seconds)
                    await send_body(b": ping\n\n")

            group.start_soon(watch_disconnect)
            try:
                await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
                group.start_soon(keep_alive)
                try:
                    async for event in events:
                        await send_body(format_event(event))
                except Exception as exc:
                    if isinstance(exc, OSError):
                        raise
                    logger.exception("event stream failed", exc_info=exc)
                    await send_body(format_event(StreamEvent("error", INTERNAL_ERROR)))
                async with lock:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
            except OSError:
                pass  # servers on ASGI 2.4 raise here when the client has gone
            group.cancel_scope.cancel()
