"""The workers' side of the session memory in Redis: read a session's newest turns, add a turn to it.

The API reads and writes the same keys through `convoflow.dispatch.recent.RecentTurns`.
"""

from __future__ import annotations

from typing import Any

from convoflow.config import Settings
from convoflow.dispatch.recent import (
    RECENT_TURNS_TTL_SECONDS,
    decode_newest,
    push_commands,
    recent_capacity,
    recent_key,
)
from convoflow.services.redis_client import sync_redis


def newest_turns(settings: Settings, owner: str | None, session_id: str, count: int) -> list[dict[str, Any]]:
    """Up to `count` cached turns of the session, newest first, each once."""
    if count <= 0:
        return []
    raw = sync_redis(settings.redis_url).lrange(recent_key(settings, owner, session_id), 0, count - 1)
    return decode_newest(raw)  # type: ignore[arg-type]


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
