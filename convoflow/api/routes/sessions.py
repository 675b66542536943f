"""GET /sessions and DELETE /sessions/{session_id}: conversations as a whole, read and deleted by the workers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from convoflow.api.deps import ChatDep, GatewayDep, OwnerDep
from convoflow.api.responses import error_responses
from convoflow.api.schemas import SESSION_ID_PATTERN, DeleteSessionResponse, SessionsResponse, SessionSummary
from convoflow.errors import InvalidParameter
from convoflow.services.cursors import decode_cursor
from convoflow.tasks import names

router = APIRouter(prefix="/sessions", tags=["sessions"])

ERRORS = error_responses(422, 502, 503, 504, described={422: "invalid limit, cursor or session id"})


@router.get("", response_model=SessionsResponse, responses=ERRORS)
async def list_sessions(
    gateway: GatewayDep,
    owner: OwnerDep,
    limit: Annotated[int, Query(ge=1, le=100, description="sessions per page")] = 20,
    cursor: Annotated[
        str | None, Query(max_length=512, description="`next_cursor` of the previous page; absent for the first")
    ] = None,
) -> SessionsResponse:
    """Sessions with stored turns, the most recently active first (turns not stored yet are not counted)."""
    if cursor is not None:
        try:
            decode_cursor(cursor)
        except ValueError as exc:
            problem = {"loc": ["query", "cursor"], "msg": str(exc), "type": "value_error"}
            raise InvalidParameter(f"cursor: {exc}", detail=[problem]) from exc
    page = await gateway.call(
        names.LIST_SESSIONS, {"limit": limit, "cursor": cursor, "owner": owner}, kind="sessions", owner=owner
    )
    sessions = [SessionSummary.model_validate(item) for item in page["sessions"]]
    return SessionsResponse(count=len(sessions), sessions=sessions, next_cursor=page["next_cursor"])


@router.delete("/{session_id}", response_model=DeleteSessionResponse, responses=ERRORS)
async def delete_session(
    chat: ChatDep,
    owner: OwnerDep,
    session_id: Annotated[str, Path(pattern=SESSION_ID_PATTERN, max_length=128)],
) -> DeleteSessionResponse:
    """Delete every stored turn of the session (through the delete task) and forget its cached turns."""
    result = await chat.delete(days_old=None, session_id=session_id, owner=owner)
    return DeleteSessionResponse(session_id=session_id, deleted=int(result["deleted"]), task_id=str(result["task_id"]))
