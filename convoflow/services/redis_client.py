"""One synchronous Redis client per process and URL, for worker-side bookkeeping (outbox, dead letters, locks)."""

from __future__ import annotations

from functools import lru_cache

import redis


@lru_cache(maxsize=4)
def sync_redis(url: str) -> redis.Redis:
    # redis-py's pool notices a fork and opens fresh connections in the child.
    return redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=5, health_check_interval=10)
