"""Request and response bodies of the HTTP API."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from convoflow.config import get_settings

SESSION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"
SessionId = Annotated[str, StringConstraints(pattern=SESSION_ID_PATTERN, max_length=128)]

# C0 controls other than tab, line feed and carriage return; PostgreSQL cannot even store NUL.
_FORBIDDEN_CONTROLS = {chr(code) for code in range(0x20)} - {"\t", "\n", "\r"} | {"\x7f"}


def check_user_text(value: str) -> str:
    """Reject what no database should get: blank text, control characters, lone surrogates, bad lengths."""
    settings = get_settings()
    if not value.strip():
        raise ValueError("must not be empty or whitespace only")
    if any(char in _FORBIDDEN_CONTROLS for char in value):
        raise ValueError("must not contain control characters (other than tab and newlines)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid Unicode (no unpaired surrogates)") from exc
    if len(value) < settings.min_input_length:
        raise ValueError(f"must be at least {settings.min_input_length} characters")
    if len(value) > settings.max_input_length:
        raise ValueError(f"must be at most {settings.max_input_length} characters")
    return value


class RunRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"user_input": "Hello", "session_id": "test"}]}
    )

    user_input: str = Field(description="what the user said; length bounded by MIN_INPUT_LENGTH/MAX_INPUT_LENGTH")
    session_id: SessionId | None = Field(default=None, description="conversation id; a new UUID when absent")

    @field_validator("user_input")
    @classmethod
    def _valid_input(cls, value: str) -> str:
        return check_user_text(value)


class RunResponse(BaseModel):
    answer: str
    session_id: str
    turn_id: uuid.UUID
    task_id: str = Field(description="id of the task that saves this turn: GET /task/{task_id}")


class HistoryItem(BaseModel):
    id: int | None = Field(description="database row id (null while the turn is not stored yet)")
    turn_id: uuid.UUID
    session_id: str
    user_input: str
    ai_response: str
    timestamp: str
    status: str = Field(default="complete", description="'complete', or 'interrupted' for a stream cut short")
    persisted: bool = Field(default=True, description="false while the turn's save is still on its way")


class HistoryResponse(BaseModel):
    count: int
    history: list[HistoryItem]
    partial: bool = Field(
        default=False,
        description="true when no worker answered in time and only turns still cached in Redis are listed",
    )


class DeleteHistoryResponse(BaseModel):
    deleted: int
    task_id: str


class TaskStatusResponse(BaseModel):
    task_id: str
    status: str = Field(description="Celery state: PENDING, STARTED, RETRY, SUCCESS, FAILURE, REVOKED")
    state: str = Field(
        default="",
        description="the same in plain words: queued, started, retrying, succeeded, failed, cancelled",
    )
    result: Any = None
    error: str | None = None


class CheckResult(BaseModel):
    ok: bool
    detail: str
    data: dict[str, Any] = Field(default_factory=dict, description="the figures behind the verdict")


class HealthResponse(BaseModel):
    status: str = Field(description="'ok' when every check passed, else 'unavailable'")
    checks: dict[str, CheckResult]


class LivenessResponse(BaseModel):
    status: str = Field(description="always 'alive': the process answers")


class ErrorResponse(BaseModel):
    """Every error answer: a stable code and a message; some add fields (e.g. `task_id`)."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(description="stable error code")
    message: str = Field(description="what went wrong, for people")


class ValidationProblem(BaseModel):
    loc: list[str | int] = Field(description="where: 'body', 'query', 'path' or 'header', then the field")
    msg: str
    type: str


class ValidationErrorResponse(ErrorResponse):
    detail: list[ValidationProblem] = Field(description="one entry per invalid field")


class SessionSummary(BaseModel):
    session_id: str
    turn_count: int = Field(description="stored turns of the session")
    first_activity: str = Field(description="time of its oldest stored turn (ISO 8601, UTC)")
    last_activity: str = Field(description="time of its newest stored turn (ISO 8601, UTC)")


class SessionsResponse(BaseModel):
    count: int
    sessions: list[SessionSummary]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


class DeleteSessionResponse(BaseModel):
    session_id: str
    deleted: int = Field(description="turns deleted from the database")
    task_id: str


class RunQueuedResponse(BaseModel):
    task_id: str = Field(description="the run's id: GET /task/{task_id}, POST /task/{task_id}/cancel")
    session_id: str
    turn_id: uuid.UUID = Field(description="the id the turn will have in GET /history")
    status: str = Field(default="queued", description="always 'queued' here")


class CancelResponse(BaseModel):
    task_id: str
    state: str = Field(description="'cancelled' (it had not started) or 'cancelling' (it stops within a moment)")
