"""A bounded per-session list of the newest answered turns in Redis: the model's memory, fast.

Beside each list sits a sorted set (scored by turn time, capped like the list) of the turn ids a worker
has stored in the database, written by `convoflow.services.memory.mark_persisted` after the save
committed, so the API can tell which of the newest turns are still on their way to the database
without asking it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from convoflow.config import Settings

RECENT_TURNS_KEEP = 50
RECENT_TURNS_TTL_SECONDS = 86_400


def recent_capacity(settings: Settings) -> int:
    """How many turns each session's list keeps: enough for the model's memory and a first history page."""
    return max(RECENT_TURNS_KEEP, settings.history_turns)


def persisted_marks_capacity(settings: Settings) -> int:
    """Marks kept per session: more than the list holds, so no cached turn loses its mark to the cap."""
    return 2 * recent_capacity(settings)


def recent_key(settings: Settings, owner: str | None, session_id: str) -> str:
    return settings.redis_key("recent", owner or "-", session_id)


def persisted_key(settings: Settings, owner: str | None, session_id: str) -> str:
    return settings.redis_key("persisted", owner or "-", session_id)


@dataclass(frozen=True)
class RecentSnapshot:
    """The cached turns of one session, newest first, and which of them the database holds."""

    turns: list[dict[str, Any]]
    persisted: frozenset[str]


class RecentTurns:
    """Newest-first turns of each (owner, session), capped and expiring; the database stays the record."""

    def __init__(
        self,
        settings: Settings,
        client: aioredis.Redis,
        keep: int = RECENT_TURNS_KEEP,
        ttl_seconds: int = RECENT_TURNS_TTL_SECONDS,
    ) -> None:
        self.settings = settings
        self.redis = client
        self.keep = max(keep, settings.history_turns)
        self.ttl_seconds = ttl_seconds

    def _key(self, owner: str | None, session_id: str) -> str:
        return recent_key(self.settings, owner, session_id)

    async def push(self, owner: str | None, session_id: str, turn: dict[str, Any]) -> None:
        key = self._key(owner, session_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lpush(key, json.dumps(turn))
            pipe.ltrim(key, 0, self.keep - 1)
            pipe.expire(key, self.ttl_seconds)
            # The marks must outlive the list they describe, or stored turns would look pending again.
            pipe.expire(persisted_key(self.settings, owner, session_id), self.ttl_seconds)
            await pipe.execute()

    async def newest(self, owner: str | None, session_id: str, count: int) -> list[dict[str, Any]]:
        """Up to `count` turns, newest first."""
        if count <= 0:
            return []
        raw = await self.redis.lrange(self._key(owner, session_id), 0, count - 1)
        return [json.loads(item) for item in raw]

    async def snapshot(self, owner: str | None, session_id: str) -> RecentSnapshot:
        """Every cached turn of the session and the ids already stored, read in one round trip."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lrange(self._key(owner, session_id), 0, -1)
            pipe.zrange(persisted_key(self.settings, owner, session_id), 0, -1)
            raw_turns, raw_ids = await pipe.execute()
        persisted = frozenset(item.decode() if isinstance(item, bytes) else str(item) for item in raw_ids)
        return RecentSnapshot(turns=[json.loads(item) for item in raw_turns], persisted=persisted)

    async def forget(self, owner: str | None, session_id: str) -> None:
        await self.redis.delete(self._key(owner, session_id), persisted_key(self.settings, owner, session_id))
