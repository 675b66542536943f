"""Conversation tasks of the seed: save a turn, read history, delete history."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from celery import shared_task
from celery.exceptions import Reject
from celery_batches import SimpleRequest

from convoflow.config import get_settings
from convoflow.services import conversations
from convoflow.services.turn_batches import QueuedSave, save_batch
from convoflow.tasks import names
from convoflow.tasks.policy import db_retry_options
from convoflow.tasks.save_outcomes import TurnOfBatch, settle
from convoflow.worker.batching import ACK, SettledBatches
from convoflow.worker.queues import DATABASE_QUEUE
from convoflow.worker.requests import ReadTask

_settings = get_settings()


def _utc(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@shared_task(
    base=SettledBatches,
    name=names.SAVE_CONVERSATION,
    queue=DATABASE_QUEUE,
    flush_every=_settings.save_batch_size,
    flush_interval=_settings.save_batch_interval,
    acks_late=True,
    typing=False,
)
def save_conversation_task(requests: list[SimpleRequest]) -> dict[str, str]:
    """Store queued turns, many per transaction; called as `save_conversation_task.delay(user_input, ai_response,
    session_id, turn_id=..., timestamp=..., status=..., owner=..., model=...)`, each message one turn.

    Returns, per message, whether it may be acknowledged (see convoflow.worker.batching).
    """
    settings = get_settings()
    saves = [QueuedSave(request.id, request.args, request.kwargs) for request in requests]
    return settle(save_conversation_task, settings, requests, save_batch(settings, saves))


@shared_task(name=names.SAVE_TURNS, queue=DATABASE_QUEUE, acks_late=True)
def save_turns_task(turns: list[dict[str, Any]]) -> dict[str, Any]:
    """Store the turns the API micro-batched into one message; each turn has its own `task_id` and result.

    Turns that meet a transient database error go back to the queue as single saves with their own
    retries, so one message never holds the others back.
    """
    settings = get_settings()
    requests = [
        TurnOfBatch(id=str(turn["task_id"]), kwargs={k: v for k, v in turn.items() if k != "task_id"}) for turn in turns
    ]
    saves = [QueuedSave(request.id, (), request.kwargs) for request in requests]
    decisions = settle(save_conversation_task, settings, requests, save_batch(settings, saves))
    if any(decision != ACK for decision in decisions.values()):
        raise Reject("part of the batch could not be settled; redelivering (saves are idempotent)", requeue=True)
    return {"success": True, "turns": len(turns)}


# A read reports no STARTED state: nobody polls it, and skipping it saves a result write per read; a read done twice
# changes nothing, so its result is written without Celery's check of the key (convoflow.worker.results).
@shared_task(
    base=ReadTask,
    name=names.GET_HISTORY,
    queue=DATABASE_QUEUE,
    track_started=False,
    **db_retry_options(),
)
def get_conversation_history_task(
    limit: int = 50,
    session_id: str | None = None,
    owner: str | None = None,
    before_turn_id: str | None = None,
    before_timestamp: str | None = None,
) -> dict[str, Any]:
    history = conversations.read_history(
        get_settings(),
        limit=limit,
        session_id=session_id,
        owner=owner,
        before_turn_id=uuid.UUID(before_turn_id) if before_turn_id else None,
        before_timestamp=_utc(before_timestamp) if before_timestamp else None,
    )
    return {"success": True, "count": len(history), "history": history}


@shared_task(name=names.DELETE_HISTORY, queue=DATABASE_QUEUE, **db_retry_options())
def delete_conversation_history_task(
    days_old: int = 30, session_id: str | None = None, owner: str | None = None
) -> dict[str, Any]:
    """Delete one session's turns when `session_id` is given, else every turn older than `days_old` days.

    With `owner`, only that owner's turns.
    """
    if session_id is not None:
        deleted = conversations.delete_session(get_settings(), session_id, owner)
    else:
        deleted = conversations.delete_older_than(get_settings(), days_old, owner)
    return {"success": True, "deleted": deleted, "days_old": days_old, "session_id": session_id}
