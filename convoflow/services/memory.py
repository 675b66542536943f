"""The workers' side of the session memory in Redis: read a session's newest turns, add a turn to it.

The API reads and writes the same keys through `convoflow.dispatch.recent.RecentTurns`. A session whose list
expired (a day after its last turn) or was lost has its stored turns read from the database and cached again.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import redis
from redis.exceptions import RedisError

from convoflow.config import Settings
from convoflow.dispatch.recent import (
    RECENT_TURNS_TTL_SECONDS,
    decode_memory,
    decode_newest,
    incomplete_commands,
    memory_call,
    push_commands,
    recalled_memory,
    recent_capacity,
    recent_key,
    refill_call,
    run_memory,
    run_refill,
)
from convoflow.observability import metrics
from convoflow.services.redis_client import sync_redis

logger = logging.getLogger(__name__)


def newest_turns(settings: Settings, owner: str | None, session_id: str, count: int) -> list[dict[str, Any]]:
    """Up to `count` turns of the session, newest first, each once: cached, and (a known session with nothing
    cached, or one whose read back failed earlier) recalled from the database."""
    if count <= 0:
        return []
    client = sync_redis(settings.redis_url)
    if not settings.recalls_memory:
        return decode_newest(client.lrange(recent_key(settings, owner, session_id), 0, count - 1))  # type: ignore[arg-type]
    keys, args = memory_call(settings, owner, session_id, count)
    newest, read_back = decode_memory(run_memory(client, keys, args))
    if not read_back:
        return newest
    return recall(client, settings, owner, session_id, count, newest)[:count]


def recall(
    client: redis.Redis,
    settings: Settings,
    owner: str | None,
    session_id: str,
    count: int,
    cached: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """The session's memory (newest first): the `cached` turns, then its newest `count` stored turns not among them,
    cached again behind them through `client`; only the cached ones when the database fails (a later run tries
    again)."""
    # Here, not at the top: the API imports this module's importers and loads no database code.
    from convoflow.db.errors import TRANSIENT_DB_ERRORS
    from convoflow.services.conversations import read_history

    try:
        stored = read_history(settings, limit=count, session_id=session_id, owner=owner)
    except TRANSIENT_DB_ERRORS as exc:
        metrics.memory_recalls.labels(outcome="failed").inc()
        logger.warning("session memory not read from the database (%s): the run goes on without it", exc)
        with contextlib.suppress(RedisError), client.pipeline(transaction=False) as pipe:
            incomplete_commands(pipe, settings, owner, session_id, RECENT_TURNS_TTL_SECONDS)
            pipe.execute()
        return cached
    metrics.memory_recalls.labels(outcome="recalled" if stored else "empty").inc()
    memory, fresh = recalled_memory(cached, stored)
    keys, args = refill_call(
        settings, owner, session_id, fresh, keep=recent_capacity(settings), ttl_seconds=RECENT_TURNS_TTL_SECONDS
    )
    run_refill(client, keys, args)
    return memory


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
