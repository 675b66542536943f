"""Conversation tasks of the seed: save a turn, read history, delete history."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from celery import Task, shared_task

from convoflow.config import get_settings
from convoflow.db.repository import NewTurn
from convoflow.services import conversations, pending
from convoflow.tasks.policy import db_retry_options
from convoflow.worker.queues import DATABASE_QUEUE


def _parse_time(value: str | None) -> datetime:
    if not value:
        return datetime.now(UTC)
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@shared_task(bind=True, name="celery_tasks.save_conversation_task", queue=DATABASE_QUEUE, **db_retry_options())
def save_conversation_task(
    self: Task[Any, Any],
    user_input: str,
    ai_response: str,
    session_id: str,
    turn_id: str | None = None,
    timestamp: str | None = None,
    status: str = "complete",
    owner: str | None = None,
    model: str | None = None,
) -> dict[str, Any]:
    """Store one turn once. Without a turn id (the seed's call) the task id is the idempotency key."""
    key = uuid.UUID(turn_id) if turn_id else uuid.UUID(str(self.request.id))
    turn = NewTurn(
        turn_id=key,
        session_id=session_id,
        user_input=user_input,
        ai_response=ai_response,
        timestamp=_parse_time(timestamp),
        status=status,
        owner=owner,
        model=model,
    )
    settings = get_settings()
    inserted = conversations.store_turns(settings, [turn])
    pending.mark_stored(settings, [turn], inserted)
    return {"success": True, "turn_id": str(key), "session_id": session_id, "stored": key in inserted}


@shared_task(name="celery_tasks.get_conversation_history_task", queue=DATABASE_QUEUE, **db_retry_options())
def get_conversation_history_task(
    limit: int = 50,
    session_id: str | None = None,
    owner: str | None = None,
    before_turn_id: str | None = None,
) -> dict[str, Any]:
    history = conversations.read_history(
        get_settings(),
        limit=limit,
        session_id=session_id,
        owner=owner,
        before_turn_id=uuid.UUID(before_turn_id) if before_turn_id else None,
    )
    return {"success": True, "count": len(history), "history": history}


@shared_task(name="celery_tasks.delete_conversation_history_task", queue=DATABASE_QUEUE, **db_retry_options())
def delete_conversation_history_task(
    days_old: int = 30, session_id: str | None = None, owner: str | None = None
) -> dict[str, Any]:
    """Delete one session's turns when `session_id` is given, else every turn older than `days_old` days."""
    if session_id is not None:
        deleted = conversations.delete_session(get_settings(), session_id, owner)
    else:
        deleted = conversations.delete_older_than(get_settings(), days_old)
    return {"success": True, "deleted": deleted, "days_old": days_old, "session_id": session_id}
