"""The outbox: every answered turn stays in Redis until a worker has stored it, so none can be lost on the way.

The broker alone does not guarantee that: kombu's Redis transport takes a message off the queue (BRPOP)
before it records it as unacknowledged, so a worker killed in between loses it. The API writes each turn
here before it answers; the worker removes it after its transaction commits; a sweeper in every worker
sends again whatever stayed longer than OUTBOX_REDELIVER_AFTER (saves are idempotent by turn id).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from convoflow import jsoncodec
from convoflow.config import Settings


def turns_key(settings: Settings) -> str:
    return settings.redis_key("outbox", "turns")


def due_key(settings: Settings) -> str:
    return settings.redis_key("outbox", "due")


def lock_key(settings: Settings) -> str:
    return settings.redis_key("lock", "outbox-sweep")


def add_commands(pipe: Any, settings: Settings, turns: Iterable[Mapping[str, Any]], now: float | None = None) -> None:
    """Queue on `pipe` (sync or async pipeline) the writes that put `turns` (each with a turn_id) in the outbox."""
    stamp = time.time() if now is None else now
    entries = {str(turn["turn_id"]): jsoncodec.dumps(dict(turn)) for turn in turns}
    if entries:
        pipe.hset(turns_key(settings), mapping=entries)
        pipe.zadd(due_key(settings), dict.fromkeys(entries, stamp))


def remove_commands(pipe: Any, settings: Settings, turn_ids: Iterable[str]) -> None:
    """Queue on `pipe` the removal of stored (or dead-lettered) turns from the outbox."""
    ids = [str(turn_id) for turn_id in turn_ids]
    if ids:
        pipe.hdel(turns_key(settings), *ids)
        pipe.zrem(due_key(settings), *ids)


def overdue(client: Any, settings: Settings, limit: int = 500) -> list[dict[str, Any]]:
    """Turns answered more than OUTBOX_REDELIVER_AFTER seconds ago and still not stored; marks them as re-sent now."""
    cutoff = time.time() - settings.outbox_redeliver_after
    raw = client.zrangebyscore(due_key(settings), "-inf", cutoff, start=0, num=limit)
    ids = [item.decode() if isinstance(item, bytes) else str(item) for item in raw]
    if not ids:
        return []
    payloads = client.hmget(turns_key(settings), ids)
    found = [jsoncodec.loads(payload) for payload in payloads if payload is not None]
    with client.pipeline(transaction=False) as pipe:
        # Their clock restarts: a turn still queued behind a long outage is sent again only once per period.
        pipe.zadd(due_key(settings), dict.fromkeys(ids, time.time()), xx=True)
        missing = [turn_id for turn_id, payload in zip(ids, payloads, strict=True) if payload is None]
        if missing:
            pipe.zrem(due_key(settings), *missing)
        pipe.execute()
    return found
