"""GET /task/{task_id}: the Celery state of a task this service issued."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from convoflow.api.deps import GatewayDep
from convoflow.api.schemas import ErrorResponse, TaskStatusResponse
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
    return TaskStatusResponse(task_id=status.task_id, status=status.status, result=status.result, error=status.error)
