"""POST /runs: queue a turn as a background run on the `workflow` queue; follow it with GET /task/{id}."""

from __future__ import annotations

from fastapi import APIRouter

from convoflow.api.deps import JsonBody, OwnerDep, RunsDep
from convoflow.api.schemas import ErrorResponse, RunQueuedResponse, RunRequest

router = APIRouter(tags=["runs"])

ERRORS: dict[int | str, dict[str, object]] = {
    415: {"model": ErrorResponse, "description": "the body is not JSON"},
    503: {"model": ErrorResponse, "description": "the broker or Redis is unreachable; nothing was queued"},
}


@router.post("/runs", status_code=202, response_model=RunQueuedResponse, dependencies=[JsonBody], responses=ERRORS)
async def start_run(body: RunRequest, runs: RunsDep, owner: OwnerDep) -> RunQueuedResponse:
    """Queue the turn; a worker answers it and saves it like any other turn. GET /task/{task_id} shows
    `state` queued -> started -> succeeded (`result.answer`) or failed (`error`); POST /task/{task_id}/cancel
    cancels it."""
    run = await runs.submit(body.user_input, body.session_id, owner)
    return RunQueuedResponse(task_id=run.task_id, session_id=run.session_id, turn_id=run.turn_id)
