"""Beat's heartbeat: the time of its last scheduler tick, kept in Redis for /health and /metrics."""

from __future__ import annotations

import time

import redis
import redis.asyncio as aioredis

from convoflow.config import Settings


def heartbeat_key(settings: Settings) -> str:
    return settings.redis_key("beat", "heartbeat")


def record_heartbeat(client: redis.Redis, settings: Settings) -> None:
    """Beat ticked now. Raises RedisError."""
    client.set(heartbeat_key(settings), repr(time.time()))


async def heartbeat_age(client: aioredis.Redis, settings: Settings) -> float | None:
    """Seconds since Beat's last tick; None when no Beat ever ticked here. Raises RedisError."""
    raw = await client.get(heartbeat_key(settings))
    if raw is None:
        return None
    return max(0.0, time.time() - float(raw))
