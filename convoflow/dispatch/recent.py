"""A bounded per-session list of the newest answered turns in Redis: the model's memory, fast."""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis

from convoflow.config import Settings


class RecentTurns:
    """Newest-first turns of each (owner, session), capped and expiring; the database stays the record."""

    def __init__(self, settings: Settings, client: aioredis.Redis, keep: int = 50, ttl_seconds: int = 86_400) -> None:
        self.settings = settings
        self.redis = client
        self.keep = max(keep, settings.history_turns)
        self.ttl_seconds = ttl_seconds

    def _key(self, owner: str | None, session_id: str) -> str:
        return self.settings.redis_key("recent", owner or "-", session_id)

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

    async def forget(self, owner: str | None, session_id: str) -> None:
        await self.redis.delete(self._key(owner, session_id))
