"""ASGI middleware: a request id for every request (logs, task headers, response) and its HTTP metrics."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from convoflow.observability import metrics
from convoflow.observability.request_id import HTTP_HEADER, accept_or_generate, bind_request_id, reset_request_id

UNMATCHED_ROUTE = "unmatched"
_HEADER_KEY = HTTP_HEADER.lower().encode()


def route_template(scope: Scope) -> str:
    """The path template that served the request (`/task/{task_id}`), never the raw path: bounded label values.

    Requests no route handled (404s, bodies refused before routing) share one label.
    """
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else UNMATCHED_ROUTE


class RequestTelemetry:
    """Binds the request id before anything logs, returns it as X-Request-ID, counts and times the request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        supplied = dict(scope.get("headers") or []).get(_HEADER_KEY)
        request_id = accept_or_generate(supplied.decode("latin-1") if supplied else None)
        token = bind_request_id(request_id)
        status = 500  # what the client gets when the app raises before answering
        began = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message = {**message, "headers": [*message.get("headers", []), (_HEADER_KEY, request_id.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            labels = {"method": scope["method"], "route": route_template(scope), "status": str(status)}
            metrics.http_requests.labels(**labels).inc()
            metrics.http_request_duration.labels(**labels).observe(time.perf_counter() - began)
            reset_request_id(token)
