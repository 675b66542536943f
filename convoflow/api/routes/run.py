"""POST /run: answer a turn with the workflow and queue its save."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Response

from convoflow.api.deps import ChatDep, IdempotencyDep, JsonBody, OwnerDep
from convoflow.api.responses import error_responses
from convoflow.api.schemas import RunRequest, RunResponse

router = APIRouter(tags=["run"])

IDEMPOTENCY_KEY_PATTERN = r"^[!-~]{1,255}$"

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="1-255 visible ASCII characters (e.g. a UUID): a repeated request with the same key and body "
        "gets the first answer instead of a second model call",
    ),
]

RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "headers": {
            "Idempotent-Replayed": {
                "description": "`true` when the answer is the stored answer of an earlier request with this key",
                "schema": {"type": "string"},
            }
        }
    },
    **error_responses(
        409,
        413,
        415,
        422,
        502,
        503,
        described={
            409: "a request with the same Idempotency-Key is still running; retry shortly",
            422: "invalid body or header, or an Idempotency-Key reused with a different body",
            502: "the language model failed",
            503: "the broker or Redis is unreachable; nothing was saved",
        },
    ),
}


@router.post("/run", response_model=RunResponse, dependencies=[JsonBody], responses=RESPONSES)
async def run(
    body: RunRequest,
    chat: ChatDep,
    idempotency: IdempotencyDep,
    owner: OwnerDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> RunResponse:
    """Run the workflow on `user_input`; the turn is saved by a worker (`task_id`)."""

    async def answer() -> dict[str, Any]:
        turn = await chat.answer(body.user_input, body.session_id, owner=owner)
        return turn.as_json()

    outcome = await idempotency.run(owner, idempotency_key, body.model_dump(mode="json"), answer)
    if outcome.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return RunResponse.model_validate(outcome.response)
