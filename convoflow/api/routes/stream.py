"""POST /run/stream: the /run turn as server-sent events while the model writes it."""

from __future__ import annotations

from fastapi import APIRouter

from convoflow.api.deps import ChatDep, JsonBody, OwnerDep
from convoflow.api.schemas import ErrorResponse, RunRequest
from convoflow.api.sse import EventStreamResponse
from convoflow.services.streaming import stream_turn

router = APIRouter(tags=["run"])

EVENTS_DESCRIPTION = """A `text/event-stream` of:

- `event: token` / `data: {"delta": "..."}` as the model writes;
- then `event: done` / `data: {"answer", "session_id", "turn_id", "task_id"}` once the turn is queued for saving;
- or `event: error` / `data: {"error", "message"}` when the model, the broker or Redis fails (nothing is saved).

A client that disconnects before `done` leaves its partial answer saved with status `interrupted`."""

STREAM_EXAMPLE = (
    'event: token\ndata: {"delta":"Hello "}\n\n'
    'event: done\ndata: {"answer":"Hello there.","session_id":"demo","turn_id":"...","task_id":"..."}\n\n'
)


@router.post(
    "/run/stream",
    status_code=200,
    response_class=EventStreamResponse,
    response_description="server-sent events",
    dependencies=[JsonBody],
    responses={
        200: {
            "description": EVENTS_DESCRIPTION,
            "content": {"text/event-stream": {"schema": {"type": "string"}, "example": STREAM_EXAMPLE}},
        },
        415: {
            "description": "the body is not JSON",
            "content": {"application/json": {"schema": ErrorResponse.model_json_schema()}},
        },
    },
)
async def run_stream(body: RunRequest, chat: ChatDep, owner: OwnerDep) -> EventStreamResponse:
    """Like POST /run, streamed: failures after the request was accepted arrive as an `error` event."""
    return EventStreamResponse(stream_turn(chat, body.user_input, body.session_id, owner))
