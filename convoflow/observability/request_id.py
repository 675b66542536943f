"""The request id: accepted from `X-Request-ID` or generated, kept in a contextvar, carried in task headers."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar, Token

HTTP_HEADER = "X-Request-ID"
# The Celery message header that carries it from the API into the worker.
TASK_HEADER = "request_id"

# Ids travel into every log line: accept only short, plain tokens so a client cannot forge log lines.
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")

_current: ContextVar[str | None] = ContextVar("convoflow_request_id", default=None)


def current_request_id() -> str | None:
    return _current.get()


def bind_request_id(request_id: str | None) -> Token[str | None]:
    """Make `request_id` current; pass the token to `reset_request_id` when the work is done."""
    return _current.set(request_id)


def reset_request_id(token: Token[str | None]) -> None:
    _current.reset(token)


def accept_or_generate(supplied: str | None) -> str:
    """The client's id when it is a plain token of at most 128 characters, else a fresh one."""
    if supplied and _ACCEPTABLE.match(supplied):
        return supplied
    return uuid.uuid4().hex
