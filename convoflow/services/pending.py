"""Turns answered but not stored yet: the outbox's answer-time index gives the persistence lag.

The API writes each turn to the outbox before it queues the save, and whoever stores turns removes them
(see convoflow.services.outbox); this module reads that index for /health and /metrics and counts what was
persisted.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import redis.asyncio as aioredis

from convoflow.config import Settings
from convoflow.observability import metrics
from convoflow.services.outbox import due_key

if TYPE_CHECKING:  # the API reads the lag and loads no database code
    from convoflow.db.repository import NewTurn


def record_stored(turns: Sequence[NewTurn], inserted: Collection[uuid.UUID]) -> None:
    """After a commit: the new turns count as persisted, with their answer-to-stored latency observed."""
    now = datetime.now(UTC)
    for turn in turns:
        if turn.turn_id in inserted:
            metrics.turns_persisted.inc()
            metrics.answer_to_stored.observe(max(0.0, (now - turn.timestamp).total_seconds()))


@dataclass(frozen=True)
class PersistenceLag:
    pending: int
    oldest_age_seconds: float | None


async def persistence_lag(client: aioredis.Redis, settings: Settings) -> PersistenceLag:
    """How many turns wait to be stored, and how long the oldest has waited. Raises RedisError."""
    key = due_key(settings)
    async with client.pipeline(transaction=False) as pipe:
        pipe.zcard(key)
        pipe.zrange(key, 0, 0, withscores=True)
        count, oldest = await pipe.execute()
    if not oldest:
        return PersistenceLag(pending=int(count), oldest_age_seconds=None)
    return PersistenceLag(pending=int(count), oldest_age_seconds=max(0.0, time.time() - float(oldest[0][1])))
