"""How full the shared Redis is and whether it may evict keys, from INFO: for /health and /metrics.

Everything convoflow keeps in Redis is data: queued saves and runs, the outbox of answered turns not stored yet,
session memory, task results. A Redis that evicts keys when it reaches `maxmemory` can drop any of them; one that
does not (`noeviction`) refuses writes instead, which the API answers with 503 and loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

NO_EVICTION = "noeviction"


@dataclass(frozen=True)
class RedisMemory:
    used_bytes: int
    max_bytes: int  # Redis's maxmemory; 0: no limit
    policy: str  # Redis's maxmemory-policy
    aof: bool | None  # whether the append-only file is on; None when INFO does not say

    @property
    def evicts(self) -> bool:
        """Whether Redis drops keys when full (a limit is set and the policy is not noeviction)."""
        return self.max_bytes > 0 and self.policy != NO_EVICTION

    @property
    def used_percent(self) -> float | None:
        """Share of maxmemory in use; None without a limit."""
        return 100.0 * self.used_bytes / self.max_bytes if self.max_bytes else None


async def read_memory(client: aioredis.Redis) -> RedisMemory:
    """INFO memory and persistence, in one round trip."""
    async with client.pipeline(transaction=False) as pipe:
        pipe.info("memory")
        pipe.info("persistence")
        memory, persistence = await pipe.execute()
    aof = persistence.get("aof_enabled")
    return RedisMemory(
        used_bytes=int(memory.get("used_memory", 0)),
        max_bytes=int(memory.get("maxmemory", 0)),
        policy=str(memory.get("maxmemory_policy", NO_EVICTION)),
        aof=None if aof is None else bool(int(aof)),
    )
