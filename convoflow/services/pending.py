"""Turns answered but not stored yet, in a Redis sorted set (score: answer time): the persistence lag.

The API marks a turn pending before it queues the save, so a fast worker can never remove it first;
whoever stores turns (the save task today, a batched consumer tomorrow) calls `mark_stored` afterwards.
The bookkeeping is best effort: a Redis hiccup here costs an inaccurate lag figure, never a turn.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

import redis
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from convoflow.config import Settings
from convoflow.db.repository import NewTurn
from convoflow.observability import metrics

logger = logging.getLogger(__name__)


def pending_key(settings: Settings) -> str:
    return settings.redis_key("pending", "turns")


async def mark_pending(client: aioredis.Redis, settings: Settings, turn_id: uuid.UUID, answered_at: datetime) -> None:
    """Record that `turn_id` was answered at `answered_at` and its save is about to be queued."""
    try:
        await client.zadd(pending_key(settings), {str(turn_id): answered_at.timestamp()})
    except RedisError as exc:
        logger.warning("could not mark turn %s pending: %s", turn_id, exc.__class__.__name__)


async def discard_pending(client: aioredis.Redis, settings: Settings, turn_id: uuid.UUID) -> None:
    """Forget a turn whose save could not be queued (the client got an error, nothing will store it)."""
    try:
        await client.zrem(pending_key(settings), str(turn_id))
    except RedisError as exc:
        logger.warning("could not unmark turn %s: %s", turn_id, exc.__class__.__name__)


@lru_cache(maxsize=4)
def _worker_client(url: str) -> redis.Redis:
    # One pooled client per worker process (redis-py reconnects by itself after a fork).
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)


def mark_stored(settings: Settings, turns: Sequence[NewTurn], inserted: Collection[uuid.UUID]) -> None:
    """After a commit: the turns are no longer pending; the new ones count as persisted, with their lag observed."""
    if not turns:
        return
    now = datetime.now(UTC)
    for turn in turns:
        if turn.turn_id in inserted:
            metrics.turns_persisted.inc()
            metrics.answer_to_stored.observe(max(0.0, (now - turn.timestamp).total_seconds()))
    try:
        _worker_client(settings.redis_url).zrem(pending_key(settings), *(str(turn.turn_id) for turn in turns))
    except RedisError as exc:
        logger.warning("could not unmark %d stored turns: %s", len(turns), exc.__class__.__name__)


@dataclass(frozen=True)
class PersistenceLag:
    pending: int
    oldest_age_seconds: float | None


async def persistence_lag(client: aioredis.Redis, settings: Settings) -> PersistenceLag:
    """How many turns wait to be stored, and how long the oldest has waited. Raises RedisError."""
    key = pending_key(settings)
    async with client.pipeline(transaction=False) as pipe:
        pipe.zcard(key)
        pipe.zrange(key, 0, 0, withscores=True)
        count, oldest = await pipe.execute()
    if not oldest:
        return PersistenceLag(pending=int(count), oldest_age_seconds=None)
    return PersistenceLag(pending=int(count), oldest_age_seconds=max(0.0, time.time() - float(oldest[0][1])))
