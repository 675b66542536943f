"""POST /runs: queue a turn as a background run on the `workflow` queue; follow it with GET /task/{id}."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from convoflow.api.deps import IdempotencyDep, JsonBody, OwnerDep, RunsDep
from convoflow.api.responses import error_responses
from convoflow.api.routes.run import IdempotencyKey
from convoflow.api.schemas import RunQueuedResponse, RunRequest

router = APIRouter(tags=["runs"])

RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {
        "headers": {
            "Idempotent-Replayed": {
                "description": "`true` when this is the run queued by an earlier request with this key",
                "schema": {"type": "string"},
            }
        }
    },
    **error_responses(
        409,
        413,
        415,
        422,
        503,
        described={
            409: "a request with the same Idempotency-Key is still being handled; retry shortly",
            422: "invalid body or header, or an Idempotency-Key reused with a different body",
            503: "the broker or Redis is unreachable; nothing was queued",
        },
    ),
}


@router.post("/runs", status_code=202, response_model=RunQueuedResponse, dependencies=[JsonBody], responses=RESPONSES)
async def start_run(
    body: RunRequest,
    runs: RunsDep,
    idempotency: IdempotencyDep,
    owner: OwnerDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> RunQueuedResponse:
    """Queue the turn; a worker answers it and saves it like any other turn. GET /task/{task_id} shows
    `state` queued -> started -> succeeded (`result.answer`) or failed (`error`); POST /task/{task_id}/cancel
    cancels it. With an Idempotency-Key, a repeated request gets the run the first one queued."""

    async def queue() -> dict[str, Any]:
        run = await runs.submit(body.user_input, body.session_id, owner)
        return {"task_id": run.task_id, "session_id": run.session_id, "turn_id": str(run.turn_id)}

    # The path is part of the request: a key used for POST /run cannot replay into POST /runs.
    request = {"path": "/runs", **body.model_dump(mode="json")}
    outcome = await idempotency.run(owner, idempotency_key, request, queue)
    if outcome.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return RunQueuedResponse.model_validate(outcome.response)
