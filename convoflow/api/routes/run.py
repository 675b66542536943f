"""POST /run: answer a turn with the workflow and queue its save."""

from __future__ import annotations

from fastapi import APIRouter

from convoflow.api.deps import ChatDep, JsonBody
from convoflow.api.schemas import ErrorResponse, RunRequest, RunResponse

router = APIRouter(tags=["run"])

ERRORS: dict[int | str, dict[str, object]] = {
    415: {"model": ErrorResponse, "description": "the body is not JSON"},
    502: {"model": ErrorResponse, "description": "the language model failed"},
    503: {"model": ErrorResponse, "description": "the broker or Redis is unreachable; nothing was saved"},
}


@router.post("/run", response_model=RunResponse, dependencies=[JsonBody], responses=ERRORS)
async def run(body: RunRequest, chat: ChatDep) -> RunResponse:
    """Run the workflow on `user_input`; the turn is saved by a worker (`task_id`)."""
    turn = await chat.answer(body.user_input, body.session_id)
    return RunResponse(answer=turn.answer, session_id=turn.session_id, turn_id=turn.turn_id, task_id=turn.task_id)
