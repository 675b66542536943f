"""Deleted sessions stay deleted: a turn answered before its session was deleted is not stored afterwards.

A save can reach the database after the delete of its session: it was still queued, retried after a database
outage, or sent again from the outbox. Deleting a session first records when it was deleted (a Redis key per
owner and session, kept DELETED_SESSION_MEMORY_SECONDS); a batch of saves drops the turns answered before that
moment. Turns answered after it (the client carried on in the same session) are stored as usual. When Redis
cannot be read the batch is stored unfiltered: a turn is never lost to a tombstone lookup.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from convoflow.config import Settings
from convoflow.services.redis_client import sync_redis

if TYPE_CHECKING:
    from convoflow.db.repository import NewTurn

logger = logging.getLogger(__name__)

# Longer than any save can stay on its way: the outbox sends unsaved turns again for as long as Redis keeps them,
# and a save retries a database outage for about an hour (SAVE_MAX_RETRIES x SAVE_RETRY_BACKOFF_MAX).
DELETED_SESSION_MEMORY_SECONDS = 7 * 24 * 3600


def key(settings: Settings, owner: str | None, session_id: str) -> str:
    return settings.redis_key("deleted-session", owner or "-", session_id)


def mark_deleted(settings: Settings, owner: str | None, session_id: str, when: datetime) -> None:
    """Record that the session's turns answered up to `when` are deleted. Raises RedisError."""
    client = sync_redis(settings.redis_url)
    client.set(key(settings, owner, session_id), when.timestamp(), ex=DELETED_SESSION_MEMORY_SECONDS)


def answered_before_deletion(
    settings: Settings, turns: Sequence[NewTurn], *, if_unreadable: str = "storing the batch as it is"
) -> set[uuid.UUID]:
    """The ids of the turns whose session was deleted after they were answered (none when Redis cannot be read:
    `if_unreadable` says in the warning what follows from that)."""
    sessions = sorted({(turn.owner, turn.session_id) for turn in turns})
    if not sessions:
        return set()
    try:
        stamps = sync_redis(settings.redis_url).mget([key(settings, owner, session) for owner, session in sessions])
    except RedisError as exc:
        logger.warning("could not look up deleted sessions (%s); %s", exc.__class__.__name__, if_unreadable)
        return set()
    deleted_at = {session: float(stamp) for session, stamp in zip(sessions, stamps, strict=True) if stamp is not None}
    if not deleted_at:
        return set()
    return {
        turn.turn_id
        for turn in turns
        if (turn.owner, turn.session_id) in deleted_at
        and turn.timestamp.timestamp() <= deleted_at[(turn.owner, turn.session_id)]
    }
