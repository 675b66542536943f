"""Conversation use cases: store turns once, read history, delete by age or session, set up the schema."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from convoflow.config import Settings
from convoflow.db import repository
from convoflow.db.repository import NewTurn
from convoflow.services.database import read, unit_of_work
from convoflow.services.deleted_sessions import mark_deleted

logger = logging.getLogger(__name__)


def store_turns(settings: Settings, turns: Sequence[NewTurn]) -> set[uuid.UUID]:
    """Store every turn not stored yet, in one transaction; returns the ids that were new."""
    with unit_of_work(settings) as session:
        inserted = repository.insert_turns(session, turns)
    logger.info("stored %d new of %d turns", len(inserted), len(turns))
    return inserted


def remove_turns(settings: Settings, turn_ids: Collection[uuid.UUID]) -> int:
    """Delete the turns with these ids, in one transaction; returns how many there were."""
    with unit_of_work(settings) as session:
        return repository.delete_turns(session, turn_ids)


def turn_as_dict(turn: Sequence[Any]) -> dict[str, Any]:
    """A row of repository.HISTORY_COLUMNS as the history's JSON item."""
    row_id, turn_id, session_id, user_input, ai_response, timestamp, status = turn  # faster than by name
    return {
        "id": row_id,
        "turn_id": str(turn_id),
        "session_id": session_id,
        "user_input": user_input,
        "ai_response": ai_response,
        "timestamp": timestamp.isoformat(),
        "status": status,
        "persisted": True,
    }


def read_history(
    settings: Settings,
    *,
    limit: int,
    session_id: str | None = None,
    owner: str | None = None,
    before_turn_id: uuid.UUID | None = None,
    before_timestamp: datetime | None = None,
) -> list[dict[str, Any]]:
    """The newest `limit` turns (of a session, of an owner), newest first, as plain JSON-ready dicts."""
    turns = read(
        settings,
        lambda session: repository.list_history(
            session,
            limit=limit,
            session_id=session_id,
            owner=owner,
            before_turn_id=before_turn_id,
            before_timestamp=before_timestamp,
        ),
    )
    return [turn_as_dict(turn) for turn in turns]


def delete_older_than(settings: Settings, days_old: int, owner: str | None = None) -> int:
    """Delete turns older than `days_old` days (of one owner, when given) in batches; returns how many went."""
    cutoff = datetime.now(UTC) - timedelta(days=days_old)
    deleted = _delete_in_batches(
        settings, lambda session, size: repository.delete_batch_older_than(session, cutoff, size, owner)
    )
    logger.info("deleted %d turns older than %d days", deleted, days_old)
    return deleted


def delete_session(settings: Settings, session_id: str, owner: str | None = None) -> int:
    """Delete one session's turns in batches; returns how many went.

    First records the deletion, so that a turn answered before it but stored after it is dropped instead
    (convoflow.services.deleted_sessions).
    """
    mark_deleted(settings, owner, session_id, datetime.now(UTC))
    deleted = _delete_in_batches(
        settings, lambda session, size: repository.delete_batch_of_session(session, session_id, size, owner)
    )
    logger.info("deleted %d turns of one session", deleted)
    return deleted


def _delete_in_batches(settings: Settings, delete_batch: Callable[[Session, int], int]) -> int:
    """Call `delete_batch(session, batch_size)`, a transaction each, until a batch comes up short; returns the sum."""
    deleted = 0
    while True:
        with unit_of_work(settings) as session:
            batch = delete_batch(session, settings.retention_batch_size)
        deleted += batch
        if batch < settings.retention_batch_size:
            return deleted


def initialise_schema(settings: Settings) -> dict[str, str | None]:
    """Bring the database to the latest schema; running it again changes nothing."""
    # Alembic is loaded only when a schema task runs, not by every worker process.
    from convoflow.db.migrate import upgrade_to_head

    before, after = upgrade_to_head(settings.sqlalchemy_url)
    logger.info("database schema at %s (was %s)", after, before)
    return {"revision_before": before, "revision": after}


def check_database(settings: Settings) -> None:
    read(settings, repository.ping)
