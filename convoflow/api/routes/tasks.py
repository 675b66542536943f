"""GET /task/{task_id}: the Celery state of a task this service issued to the caller."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from convoflow.api.deps import GatewayDep, OwnerDep, RunsDep
from convoflow.api.responses import error_responses
from convoflow.api.schemas import CancelResponse, TaskStatusResponse
from convoflow.dispatch.states import friendly_state
from convoflow.errors import NotFound

router = APIRouter(prefix="/task", tags=["tasks"])


@router.get(
    "/{task_id}",
    response_model=TaskStatusResponse,
    responses=error_responses(
        404, 422, 503, described={404: "this service never issued that task id to the caller (or its record expired)"}
    ),
)
async def task_status(task_id: uuid.UUID, gateway: GatewayDep, owner: OwnerDep) -> TaskStatusResponse:
    issued = await gateway.lookup(str(task_id))
    # Another caller's task is answered exactly like an unknown one, so task ids reveal nothing.
    if issued is None or not issued.visible_to(owner):
        raise NotFound(f"no task {task_id} was issued by this service (or its record expired)")
    status = await gateway.status(issued.task_id)
    return TaskStatusResponse(
        task_id=status.task_id,
        status=status.status,
        state=friendly_state(status.status),
        result=status.result,
        error=status.error,
    )


@router.post(
    "/{task_id}/cancel",
    status_code=202,
    response_model=CancelResponse,
    responses=error_responses(
        404,
        409,
        422,
        503,
        described={
            404: "this service never issued that task id to the caller (or its record expired)",
            409: "the run has finished, or the task is not a background run",
        },
    ),
)
async def cancel_task(task_id: uuid.UUID, runs: RunsDep, owner: OwnerDep) -> CancelResponse:
    """Cancel a background run, queued or running. Runs stop cooperatively (on every worker pool):
    a queued run is `cancelled` at once, a running one answers `cancelling` and stops within a moment;
    poll GET /task/{task_id} until its state is `cancelled`. A cancelled run saves nothing."""
    state = await runs.cancel(str(task_id), owner)
    return CancelResponse(task_id=str(task_id), state=state)
