"""GET /task/{task_id}: the Celery state of a task this service issued."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from convoflow.api.deps import GatewayDep, OwnerDep, RunsDep
from convoflow.api.schemas import CancelResponse, ErrorResponse, TaskStatusResponse
from convoflow.dispatch.states import friendly_state
from convoflow.errors import NotFound

router = APIRouter(prefix="/task", tags=["tasks"])


@router.get(
    "/{task_id}",
    response_model=TaskStatusResponse,
    responses={404: {"model": ErrorResponse, "description": "this service never issued that task id"}},
)
async def task_status(task_id: uuid.UUID, gateway: GatewayDep) -> TaskStatusResponse:
    issued = await gateway.lookup(str(task_id))
    if issued is None:
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
    responses={
        404: {"model": ErrorResponse, "description": "this service never issued that task id"},
        409: {"model": ErrorResponse, "description": "the run has finished, or the task is not a background run"},
        503: {"model": ErrorResponse, "description": "the broker or Redis is unreachable"},
    },
)
async def cancel_task(task_id: uuid.UUID, runs: RunsDep, owner: OwnerDep) -> CancelResponse:
    """Cancel a background run, queued or running. Runs stop cooperatively (on every worker pool):
    a queued run is `cancelled` at once, a running one answers `cancelling` and stops within a moment;
    poll GET /task/{task_id} until its state is `cancelled`. A cancelled run saves nothing."""
    state = await runs.cancel(str(task_id), owner)
    return CancelResponse(task_id=str(task_id), state=state)
