"""The workers' side of the session memory in Redis: read a session's newest turns, add a turn, mark turns stored.

The API reads and writes the same keys through `convoflow.dispatch.recent.RecentTurns`. Redis is a cache
here: when it fails, the database (the record) is still right, so marking is best effort.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC
from functools import lru_cache
from typing import Any

import redis
from redis.exceptions import RedisError

from convoflow.config import Settings
from convoflow.db.repository import NewTurn
from convoflow.dispatch.recent import (
    RECENT_TURNS_TTL_SECONDS,
    persisted_key,
    persisted_marks_capacity,
    recent_capacity,
    recent_key,
)

logger = logging.getLogger(__name__)


@lru_cache(maxsize=4)
def redis_client(url: str) -> redis.Redis:
    """One thread-safe client (connection pool) per process and URL; redis-py renews the pool after a fork."""
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)


def newest_turns(settings: Settings, owner: str | None, session_id: str, count: int) -> list[dict[str, Any]]:
    """Up to `count` cached turns of the session, newest first."""
    if count <= 0:
        return []
    raw = redis_client(settings.redis_url).lrange(recent_key(settings, owner, session_id), 0, count - 1)
    return [json.loads(item) for item in raw]  # type: ignore[union-attr]


def remember_turn(settings: Settings, turn: dict[str, Any]) -> None:
    """Put an answered turn (whose save is queued) at the front of its session's list."""
    owner, session_id = turn.get("owner"), str(turn["session_id"])
    key = recent_key(settings, owner, session_id)
    with redis_client(settings.redis_url).pipeline(transaction=True) as pipe:
        pipe.lpush(key, json.dumps(turn))
        pipe.ltrim(key, 0, recent_capacity(settings) - 1)
        pipe.expire(key, RECENT_TURNS_TTL_SECONDS)
        pipe.expire(persisted_key(settings, owner, session_id), RECENT_TURNS_TTL_SECONDS)
        pipe.execute()


def mark_persisted(settings: Settings, turns: Sequence[NewTurn]) -> None:
    """Record that `turns` are in the database (call after the commit), so the API shows them as persisted.

    Every turn of a committed batch is marked, also those a redelivered save found already stored.
    """
    if not turns:
        return
    try:
        with redis_client(settings.redis_url).pipeline(transaction=False) as pipe:
            for (owner, session_id), scores in _marks_by_session(turns).items():
                key = persisted_key(settings, owner, session_id)
                pipe.zadd(key, scores)
                pipe.zremrangebyrank(key, 0, -persisted_marks_capacity(settings) - 1)
                pipe.expire(key, RECENT_TURNS_TTL_SECONDS)
            pipe.execute()
    except RedisError as exc:
        # Nothing is lost: the API prefers the database's copy of a cached turn, so an unmarked stored
        # turn shows as persisted wherever its history page comes from the database.
        logger.warning("could not mark %d stored turns in Redis: %s", len(turns), exc.__class__.__name__)


def _marks_by_session(turns: Sequence[NewTurn]) -> dict[tuple[str | None, str], dict[str, float]]:
    marks: dict[tuple[str | None, str], dict[str, float]] = {}
    for turn in turns:
        stamp = turn.timestamp if turn.timestamp.tzinfo else turn.timestamp.replace(tzinfo=UTC)
        marks.setdefault((turn.owner, turn.session_id), {})[str(turn.turn_id)] = stamp.timestamp()
    return marks
