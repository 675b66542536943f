"""ASGI middleware that refuses oversized requests with a JSON error before any route sees them.

Requests beyond the HTTP server's own parser limits (about 64 KiB of request line or headers for
uvicorn's httptools) never reach the app: uvicorn answers those with a plain-text 400 itself.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_HEADER_BYTES = 32 * 1024


class BodyTooLarge(Exception):
    pass


async def refuse(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": code, "message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestHeadLimit:
    """Refuses a request target (path and query) over `max_url_bytes` with 414, big header blocks with 431."""

    def __init__(self, app: ASGIApp, max_url_bytes: int, max_header_bytes: int = MAX_HEADER_BYTES) -> None:
        self.app = app
        self.max_url_bytes = max_url_bytes
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            target = len(scope.get("raw_path") or scope["path"].encode()) + len(scope.get("query_string", b""))
            if target > self.max_url_bytes:
                message = f"the request target (path and query) is limited to {self.max_url_bytes} bytes"
                await refuse(send, 414, "uri_too_long", message)
                return
            headers = sum(len(name) + len(value) for name, value in scope.get("headers") or [])
            if headers > self.max_header_bytes:
                message = f"request headers are limited to {self.max_header_bytes} bytes in all"
                await refuse(send, 431, "headers_too_large", message)
                return
        await self.app(scope, receive, send)


class BodySizeLimit:
    """Checks Content-Length up front and counts streamed (chunked) bodies as they arrive."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        await refuse(send, 413, "request_too_large", f"request bodies are limited to {self.max_bytes} bytes")
