"""Redis clients: one synchronous client per process and URL for worker-side bookkeeping (outbox, dead letters,
locks), and the retry policy of the asyncio clients that are kept between requests or runs."""

from __future__ import annotations

from functools import lru_cache

import redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError


@lru_cache(maxsize=4)
def sync_redis(url: str) -> redis.Redis:
    # redis-py's pool notices a fork and opens fresh connections in the child.
    return redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=5, health_check_interval=10)


def reconnect_once() -> Retry:
    """One immediate retry on a new connection when a pooled one turns out to be closed.

    An asyncio client only learns that Redis closed its idle connections (a restart, a failover) by using them, so
    without it every pooled connection fails one command after Redis is back. (redis-py 8's asyncio pool checks a
    connection for a close before handing it out, but skips that check while maintenance notifications are on, and
    they are, as "auto", by default; the synchronous pool always checks.) Only connection errors are retried,
    never timeouts (the command may still be running). Whatever a client with this policy sends must be safe to
    run twice: a connection can break after Redis ran a command and before its reply arrived.
    """
    return Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
