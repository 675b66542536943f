"""POST /run/stream: the /run turn as server-sent events while the model writes it."""

from __future__ import annotations

from fastapi import APIRouter

from convoflow.api.deps import ChatDep, IdempotencyDep, JsonBody, OwnerDep
from convoflow.api.responses import DESCRIPTIONS
from convoflow.api.routes.run import IdempotencyKey
from convoflow.api.schemas import ErrorResponse, RunRequest, ValidationErrorResponse
from convoflow.api.sse import EventStreamResponse
from convoflow.services.idempotency import Outcome
from convoflow.services.streaming import idempotent_stream, replayed_stream, stream_turn

router = APIRouter(tags=["run"])

EVENTS_DESCRIPTION = """A `text/event-stream` of:

- `event: token` / `data: {"delta": "..."}` as the model writes;
- then `event: done` / `data: {"answer", "session_id", "turn_id", "task_id"}` once the turn is queued for saving;
- or `event: error` / `data: {"error", "message"}` when the model, the broker or Redis fails (nothing is saved).

A client that disconnects before `done` leaves its partial answer saved with status `interrupted`. While the model
is quiet, a comment line (`: ping`) keeps the connection alive every `STREAM_PING_SECONDS` (15 s).

With an `Idempotency-Key`, a repeated request (same key and body, on this endpoint or `/run`) gets the first
answer as one `token` event and its `done` (header `Idempotent-Replayed: true`) instead of a second model call."""

# One event of the stream, in the shape OpenAPI 3.2 gives server-sent events; `data` is a JSON document.
SSE_EVENT_SCHEMA = {
    "type": "object",
    "properties": {
        "event": {"type": "string", "enum": ["token", "done", "error"]},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
    "required": ["event", "data"],
}

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
            "content": {"text/event-stream": {"schema": SSE_EVENT_SCHEMA, "example": STREAM_EXAMPLE}},
            "headers": {
                "Idempotent-Replayed": {
                    "description": "`true` when the events replay the stored answer of an earlier request with the key",
                    "schema": {"type": "string"},
                }
            },
        },
        **{
            code: {
                "description": DESCRIPTIONS[code],
                # A reference, not `model`: FastAPI would list a model under this route's text/event-stream.
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
            }
            for code, model in (
                (401, ErrorResponse),
                (409, ErrorResponse),
                (413, ErrorResponse),
                (415, ErrorResponse),
                (422, ValidationErrorResponse),
            )
        },
    },
)
async def run_stream(
    body: RunRequest,
    chat: ChatDep,
    idempotency: IdempotencyDep,
    owner: OwnerDep,
    idempotency_key: IdempotencyKey = None,
) -> EventStreamResponse:
    """Like POST /run, streamed: failures after the request was accepted arrive as an `error` event."""
    ping = chat.settings.stream_ping_seconds
    if idempotency_key is None:
        return EventStreamResponse(stream_turn(chat, body.user_input, body.session_id, owner), ping_seconds=ping)
    # Claimed (or replayed, or refused with 409/422) before the first event, while a JSON error can still be sent.
    started = await idempotency.begin(owner, idempotency_key, body.model_dump(mode="json"))
    if isinstance(started, Outcome):
        replayed = replayed_stream(started.response)
        return EventStreamResponse(replayed, ping_seconds=ping, headers={"Idempotent-Replayed": "true"})
    events = stream_turn(chat, body.user_input, body.session_id, owner)
    return EventStreamResponse(idempotent_stream(idempotency, started, events), ping_seconds=ping)
