"""GET and DELETE /history: the caller's saved turns, read and deleted by the workers."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from convoflow.api.deps import ChatDep, HistoryDep, OwnerDep
from convoflow.api.responses import error_responses
from convoflow.api.schemas import SESSION_ID_PATTERN, DeleteHistoryResponse, HistoryResponse
from convoflow.errors import BadRequest

router = APIRouter(prefix="/history", tags=["history"])

SessionQuery = Annotated[str | None, Query(pattern=SESSION_ID_PATTERN, max_length=128, description="one session only")]


@router.get("", response_model=HistoryResponse, responses=error_responses(422, 502, 503, 504))
async def read_history(
    history: HistoryDep,
    owner: OwnerDep,
    session_id: SessionQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="how many turns, newest first")] = 50,
    before: Annotated[
        uuid.UUID | None, Query(description="only turns older than this turn_id: the last one of the previous page")
    ] = None,
) -> Response:
    """Turns newest first. With `session_id`, turns answered but not stored yet are included (`persisted: false`);
    without it, every session's turns come from the database only."""
    page = await history.page(limit=limit, session_id=session_id, owner=owner, before=before)
    body = HistoryResponse.model_validate({"count": len(page.turns), "history": page.turns, "partial": page.partial})
    # Validated once here and serialised by pydantic: returned as a model, FastAPI would dump it to dicts, validate
    # those again against the response model and serialise them (three passes over a page of turns).
    return Response(body.model_dump_json(), media_type="application/json")


@router.delete("", response_model=DeleteHistoryResponse, responses=error_responses(400, 422, 502, 503, 504))
async def delete_history(
    chat: ChatDep,
    owner: OwnerDep,
    session_id: SessionQuery = None,
    days_old: Annotated[int | None, Query(ge=0, le=36_500, description="delete turns older than this")] = None,
) -> DeleteHistoryResponse:
    """Delete one session (`session_id`) or every turn older than `days_old` days: exactly one of the two.

    With API keys, only the caller's own turns are deleted.
    """
    if (session_id is None) == (days_old is None):
        raise BadRequest("give exactly one of session_id or days_old")
    result = await chat.delete(days_old=days_old, session_id=session_id, owner=owner)
    return DeleteHistoryResponse(deleted=int(result["deleted"]), task_id=str(result.get("task_id", "")))
