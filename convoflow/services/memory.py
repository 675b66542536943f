"""The workers' side of the session memory in Redis: read a session's newest turns, add a turn to it.

The API reads and writes the same keys through `convoflow.dispatch.recent.RecentTurns`. A session whose list
expired (a day after its last turn) or was lost has its stored turns read from the database and cached again.
"""

from __future__ import annotations

import logging
from typing import Any

from convoflow.config import Settings
from convoflow.dispatch.recent import (
    RECENT_TURNS_TTL_SECONDS,
    decode_newest,
    known_key,
    push_commands,
    recent_capacity,
    recent_key,
    refill_call,
    run_refill,
)
from convoflow.observability import metrics
from convoflow.services.redis_client import sync_redis

logger = logging.getLogger(__name__)


def newest_turns(settings: Settings, owner: str | None, session_id: str, count: int) -> list[dict[str, Any]]:
    """Up to `count` turns of the session, newest first, each once: cached, else (a known session) recalled from
    the database."""
    if count <= 0:
        return []
    client = sync_redis(settings.redis_url)
    newest = decode_newest(client.lrange(recent_key(settings, owner, session_id), 0, count - 1))  # type: ignore[arg-type]
    if newest or not settings.recalls_memory or not client.exists(known_key(settings, owner, session_id)):
        return newest
    return recall(settings, owner, session_id, count)


def recall(settings: Settings, owner: str | None, session_id: str, count: int) -> list[dict[str, Any]]:
    """The session's newest `count` stored turns (newest first), cached again; none when the database fails."""
    # Here, not at the top: the API imports this module's importers and loads no database code.
    from convoflow.db.errors import TRANSIENT_DB_ERRORS
    from convoflow.services.conversations import read_history

    try:
        stored = read_history(settings, limit=count, session_id=session_id, owner=owner)
    except TRANSIENT_DB_ERRORS as exc:
        metrics.memory_recalls.labels(outcome="failed").inc()
        logger.warning("session memory not read from the database (%s): the run goes on without it", exc)
        return []
    metrics.memory_recalls.labels(outcome="recalled" if stored else "empty").inc()
    if stored:
        keys, args = refill_call(
            settings, owner, session_id, stored, keep=recent_capacity(settings), ttl_seconds=RECENT_TURNS_TTL_SECONDS
        )
        run_refill(sync_redis(settings.redis_url), keys, args)
    return stored


def remember_turn(settings: Settings, turn: dict[str, Any]) -> None:
    """Put an answered turn (whose save is queued) at the front of its session's list."""
    with sync_redis(settings.redis_url).pipeline(transaction=True) as pipe:
        push_commands(
            pipe,
            settings,
            turn.get("owner"),
            turn,
            keep=recent_capacity(settings),
            ttl_seconds=RECENT_TURNS_TTL_SECONDS,
        )
        pipe.execute()
