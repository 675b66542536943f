"""Domain errors, each with the HTTP status and stable code the API answers with."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """An error with an HTTP status, a stable code and a message safe to show to the client."""

    status_code = 500
    code = "internal_error"
    headers: dict[str, str] | None = None

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class BrokerUnavailable(ServiceError):
    status_code = 503
    code = "broker_unavailable"


class StateStoreUnavailable(ServiceError):
    status_code = 503
    code = "redis_unavailable"


class TaskTimedOut(ServiceError):
    status_code = 504
    code = "task_timeout"


class TaskFailed(ServiceError):
    status_code = 502
    code = "task_failed"


class NotFound(ServiceError):
    status_code = 404
    code = "not_found"


class UnsupportedMediaType(ServiceError):
    status_code = 415
    code = "unsupported_media_type"


class BadRequest(ServiceError):
    status_code = 400
    code = "bad_request"


class Unauthorized(ServiceError):
    status_code = 401
    code = "unauthorized"
    headers = {"WWW-Authenticate": 'Bearer realm="convoflow"'}


class IdempotencyKeyReused(ServiceError):
    status_code = 422
    code = "idempotency_key_reused"


class IdempotencyKeyInUse(ServiceError):
    status_code = 409
    code = "idempotency_key_in_use"
    headers = {"Retry-After": "1"}


class InvalidParameter(ServiceError):
    """A parameter that passed type checks but means nothing here (an unknown cursor, say)."""

    status_code = 422
    code = "validation_error"


class Conflict(ServiceError):
    """The request is valid but the thing it names is in the wrong state for it."""

    status_code = 409
    code = "conflict"
