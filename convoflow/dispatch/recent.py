"""A bounded per-session list of the newest answered turns in Redis: the model's memory, fast.

Which of them are still on their way to the database is the outbox's to say (convoflow.services.outbox):
a turn enters it before its save is queued and leaves it once a worker has stored it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from convoflow.config import Settings
from convoflow.services.outbox import turns_key

RECENT_TURNS_KEEP = 50
RECENT_TURNS_TTL_SECONDS = 86_400


def recent_capacity(settings: Settings) -> int:
    """How many turns each session's list keeps: enough for the model's memory and a first history page."""
    return max(RECENT_TURNS_KEEP, settings.history_turns)


def recent_key(settings: Settings, owner: str | None, session_id: str) -> str:
    return settings.redis_key("recent", owner or "-", session_id)


@dataclass(frozen=True)
class RecentSnapshot:
    """The cached turns of one session, newest first, and which of them are not stored yet."""

    turns: list[dict[str, Any]]
    pending: frozenset[str]


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
            await pipe.execute()

    async def newest(self, owner: str | None, session_id: str, count: int) -> list[dict[str, Any]]:
        """Up to `count` turns, newest first."""
        if count <= 0:
            return []
        raw = await self.redis.lrange(self._key(owner, session_id), 0, count - 1)
        return [json.loads(item) for item in raw]

    async def snapshot(self, owner: str | None, session_id: str) -> RecentSnapshot:
        """Every cached turn of the session, and the ids of those still in the outbox (not stored yet)."""
        turns = [json.loads(item) for item in await self.redis.lrange(self._key(owner, session_id), 0, -1)]
        ids = list(dict.fromkeys(str(turn["turn_id"]) for turn in turns))
        if not ids:
            return RecentSnapshot(turns=[], pending=frozenset())
        async with self.redis.pipeline(transaction=False) as pipe:
            for turn_id in ids:
                pipe.hexists(turns_key(self.settings), turn_id)
            waiting = await pipe.execute()
        return RecentSnapshot(
            turns=turns, pending=frozenset(turn_id for turn_id, found in zip(ids, waiting, strict=True) if found)
        )

    async def forget(self, owner: str | None, session_id: str) -> None:
        await self.redis.delete(self._key(owner, session_id))
