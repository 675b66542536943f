"""A bounded per-session list of the newest answered turns in Redis: the model's memory, fast.

The list expires a day after the session's last turn; a session that goes on later (a known session: see
`known_key`) has its stored turns read from the database (through a worker) and cached again (`refill`).

Which of them are still on their way to the database is the outbox's to say (convoflow.services.outbox):
a turn enters it before its save is queued and leaves it once a worker has stored it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from convoflow import jsoncodec
from convoflow.config import Settings
from convoflow.services.deleted_sessions import key as deleted_session_key
from convoflow.services.outbox import turns_key

logger = logging.getLogger(__name__)

RECENT_TURNS_KEEP = 50
RECENT_TURNS_TTL_SECONDS = 86_400


# KEYS: a session's list, the outbox's turns hash. ARGV: an anchor turn id (or ''), '1' to return stored turns too.
# Returns the cached turns still in the outbox (not stored yet), the anchor, and with ARGV[2] every other cached
# turn, each followed by 1 if it is still in the outbox, else 0: one round trip, and usually nothing to decode.
# Each turn's id is found, not decoded: cjson.decode and one HEXISTS per turn took ~0.14 ms of Redis time per
# history read of 50 cached turns, ahead of the read's own message; this takes ~0.05 ms. A cached turn is a flat JSON
# object and inside a JSON string every quote is escaped, so `"turn_id":"` can only be its key (`"turn_id": "` in
# turns cached by earlier versions, which wrote JSON with spaces).
_SNAPSHOT = """
local raws = redis.call('LRANGE', KEYS[1], 0, -1)
local out = {}
if #raws == 0 then
  return out
end
local ids = {}
for i, raw in ipairs(raws) do
  local _, last = string.find(raw, '"turn_id":"', 1, true)
  if not last then
    _, last = string.find(raw, '"turn_id": "', 1, true)
  end
  local id = ''
  if last then
    local closing = string.find(raw, '"', last + 1, true)
    if closing then
      id = string.sub(raw, last + 1, closing - 1)
    end
  end
  ids[i] = id
end
local found = redis.call('HMGET', KEYS[2], unpack(ids))
for i, raw in ipairs(raws) do
  local id = ids[i]
  local waiting = 0
  if id ~= '' and found[i] then
    waiting = 1
  end
  if waiting == 1 or ARGV[2] == '1' or (id ~= '' and id == ARGV[1]) then
    table.insert(out, raw)
    table.insert(out, waiting)
  end
end
return out
"""


def recent_capacity(settings: Settings) -> int:
    """How many turns each session's list keeps: enough for the model's memory and a first history page."""
    return max(RECENT_TURNS_KEEP, settings.history_turns)


def recent_key(settings: Settings, owner: str | None, session_id: str) -> str:
    return settings.redis_key("recent", owner or "-", session_id)


def known_key(settings: Settings, owner: str | None, session_id: str) -> str:
    """A session that has answered turns, kept as long as the database keeps turns (RETENTION_DAYS): only such a
    session's memory is read back from the database when its list is gone, so a new session costs no read."""
    return settings.redis_key("known-session", owner or "-", session_id)


def incomplete_key(settings: Settings, owner: str | None, session_id: str) -> str:
    """A session answered while its stored turns could not be read back (the recall failed or timed out): the turns
    cached since are not all it has, so a later turn reads the rest from the database; the refill removes it."""
    return settings.redis_key("memory-incomplete", owner or "-", session_id)


def recall_cooldown_key(settings: Settings, owner: str | None, session_id: str) -> str:
    """Set for MEMORY_RECALL_RETRY_SECONDS after a session's stored turns could not be read back: until it expires,
    its turns do not try again (each would wait MEMORY_RECALL_TIMEOUT while the workers or the database are down)."""
    return settings.redis_key("memory-recall-cooldown", owner or "-", session_id)


def incomplete_commands(pipe: Any, settings: Settings, owner: str | None, session_id: str, ttl_seconds: int) -> None:
    """Queue on `pipe` (sync or async pipeline) the marks of a session whose stored turns could not be read back."""
    pipe.set(incomplete_key(settings, owner, session_id), 1, ex=ttl_seconds)
    if settings.memory_recall_retry_seconds > 0:
        cooldown = max(1, int(settings.memory_recall_retry_seconds * 1000))
        pipe.set(recall_cooldown_key(settings, owner, session_id), 1, px=cooldown)


def known_ttl_seconds(settings: Settings) -> int:
    return (settings.retention_days + 1) * 86_400


def push_commands(
    pipe: Any, settings: Settings, owner: str | None, turn: dict[str, Any], *, keep: int, ttl_seconds: int
) -> None:
    """Queue on `pipe` (sync or async pipeline) the writes that put `turn` at the front of its session's list and
    mark the session known."""
    session_id = str(turn["session_id"])
    key = recent_key(settings, owner, session_id)
    pipe.lpush(key, jsoncodec.dumps(turn))
    pipe.ltrim(key, 0, keep - 1)
    pipe.expire(key, ttl_seconds)
    pipe.set(known_key(settings, owner, session_id), 1, ex=known_ttl_seconds(settings))


def recalled_turn(item: dict[str, Any], owner: str | None) -> dict[str, Any]:
    """A stored turn (a history item) in the form the session's list caches answered turns."""
    return {
        "user_input": item["user_input"],
        "ai_response": item["ai_response"],
        "session_id": item["session_id"],
        "turn_id": str(item["turn_id"]),
        "timestamp": item["timestamp"],
        "owner": owner,
        "model": None,
        "status": item.get("status", "complete"),
    }


# KEYS: a session's list, its known mark, its incomplete mark, its recall cooldown. ARGV: how many turns. Returns 1
# when the session's stored turns must be read back (nothing cached and the session known, or cached since a failed
# read; not while a failed read's cooldown lasts), else 0, followed by the cached turns, newest first: the model's
# memory and whether it is whole, in one round trip.
_MEMORY = """
local turns = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
local recall = 0
if redis.call('EXISTS', KEYS[4]) == 0 then
  local mark = KEYS[3]
  if #turns == 0 then
    mark = KEYS[2]
  end
  recall = redis.call('EXISTS', mark)
end
table.insert(turns, 1, recall)
return turns
"""


def memory_call(settings: Settings, owner: str | None, session_id: str, count: int) -> tuple[list[str], list[Any]]:
    """The keys and arguments of the script that reads a session's memory; run it with `run_memory`."""
    keys = [
        recent_key(settings, owner, session_id),
        known_key(settings, owner, session_id),
        incomplete_key(settings, owner, session_id),
        recall_cooldown_key(settings, owner, session_id),
    ]
    return keys, [count]


def run_memory(client: Any, keys: list[str], args: list[Any]) -> Any:
    """Run the memory script on `client` (redis.Redis or redis.asyncio.Redis: await the result of the latter)."""
    return client.register_script(_MEMORY)(keys=keys, args=args)


def decode_memory(reply: list[Any]) -> tuple[list[dict[str, Any]], bool]:
    """The memory script's reply: the cached turns (newest first, each once), and whether to read the rest back."""
    return decode_newest(reply[1:]), bool(reply[0])


# KEYS: a session's list, its deletion record (convoflow.services.deleted_sessions), its incomplete mark. ARGV: how
# many turns the list keeps, its expiry in seconds, then for each stored turn (newest first) its answer time (epoch
# seconds) and its cached JSON. Appends the turns answered after the session's last deletion behind whatever the
# list holds (a turn answered meanwhile is newer than any stored one and stays in front), removes the incomplete
# mark; returns how many turns it appended. In one script, so a delete of the session that raced the database read
# cannot leave the turns it deleted cached as memory.
_REFILL = """
local deleted = tonumber(redis.call('GET', KEYS[2]) or '') or -1
local pushed = 0
for i = 3, #ARGV, 2 do
  if tonumber(ARGV[i]) > deleted then
    redis.call('RPUSH', KEYS[1], ARGV[i + 1])
    pushed = pushed + 1
  end
end
if pushed > 0 then
  redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[1]) - 1)
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
end
redis.call('DEL', KEYS[3])
return pushed
"""


def refill_call(
    settings: Settings,
    owner: str | None,
    session_id: str,
    stored: list[dict[str, Any]],
    *,
    keep: int,
    ttl_seconds: int,
) -> tuple[list[str], list[Any]]:
    """The keys and arguments of the script that caches a session's stored turns (history items, newest first)
    again and marks its memory whole; run it with `run_refill` (sync or asyncio client)."""
    args: list[Any] = [keep, ttl_seconds]
    for item in stored:
        args += [_epoch(str(item["timestamp"])), jsoncodec.dumps(recalled_turn(item, owner))]
    keys = [
        recent_key(settings, owner, session_id),
        deleted_session_key(settings, owner, session_id),
        incomplete_key(settings, owner, session_id),
    ]
    return keys, args


def recalled_memory(
    cached: list[dict[str, Any]], stored: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What a session remembers after its stored turns were read back: the cached turns (newer), then the stored ones
    not among them; and those stored turns, to cache behind the cached ones."""
    cached_ids = {str(turn["turn_id"]) for turn in cached}
    fresh = [item for item in stored if str(item["turn_id"]) not in cached_ids]
    return [*cached, *fresh], fresh


def run_refill(client: Any, keys: list[str], args: list[Any]) -> Any:
    """Run the refill script on `client` (redis.Redis or redis.asyncio.Redis: await the result of the latter)."""
    return client.register_script(_REFILL)(keys=keys, args=args)


def _epoch(timestamp: str) -> float:
    stamp = datetime.fromisoformat(timestamp)
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()


def decode_newest(raw: list[Any]) -> list[dict[str, Any]]:
    """A session list's entries (newest first) as turns, each turn once: a push sent again after a lost reply, or
    by a redelivered run, may have cached a turn twice."""
    turns: dict[str, dict[str, Any]] = {}
    for item in raw:
        turn = jsoncodec.loads(item)
        turns.setdefault(str(turn["turn_id"]), turn)
    return list(turns.values())


@dataclass(frozen=True)
class RecentSnapshot:
    """Cached turns of one session, newest first, and which of them are not stored yet."""

    turns: list[dict[str, Any]]
    pending: frozenset[str]


def parse_snapshot(flat: list[Any]) -> RecentSnapshot:
    """The snapshot script's reply: each cached turn followed by 1 while it is still in the outbox."""
    turns: list[dict[str, Any]] = []
    pending: set[str] = set()
    for raw, waiting in zip(flat[::2], flat[1::2], strict=True):
        turn = jsoncodec.loads(raw)
        turns.append(turn)
        if waiting:
            pending.add(str(turn["turn_id"]))
    return RecentSnapshot(turns=turns, pending=frozenset(pending))


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
        self._snapshot = client.register_script(_SNAPSHOT)
        self._memory = client.register_script(_MEMORY)

    def _key(self, owner: str | None, session_id: str) -> str:
        return recent_key(self.settings, owner, session_id)

    async def push_many(self, turns: list[tuple[dict[str, Any], str | None]]) -> None:
        """Add each (turn, owner) to its session's list, in order, with one round trip."""
        async with self.redis.pipeline(transaction=True) as pipe:
            for turn, owner in turns:
                push_commands(pipe, self.settings, owner, turn, keep=self.keep, ttl_seconds=self.ttl_seconds)
            await pipe.execute()

    async def remember_queued(self, turns: list[tuple[dict[str, Any], str | None]]) -> None:
        """Add turns whose saves the broker accepted (SaveBatcher's `on_queued`); only those join the memory.

        Once queued a turn will be stored, so failing to remember it must not turn its answer into an error.
        """
        try:
            await self.push_many(turns)
        except RedisError as exc:
            for turn, _owner in turns:
                logger.warning(
                    "turn %s queued but not added to the session's memory: %s",
                    turn["turn_id"],
                    exc.__class__.__name__,
                )

    async def refill(self, owner: str | None, session_id: str, stored: list[dict[str, Any]]) -> None:
        """Cache a session's stored turns (history items, newest first) again, behind any turn answered since, and
        mark its memory whole."""
        keys, args = refill_call(self.settings, owner, session_id, stored, keep=self.keep, ttl_seconds=self.ttl_seconds)
        await run_refill(self.redis, keys, args)

    async def newest(self, owner: str | None, session_id: str, count: int) -> list[dict[str, Any]]:
        """Up to `count` turns, newest first."""
        if count <= 0:
            return []
        return decode_newest(await self.redis.lrange(self._key(owner, session_id), 0, count - 1))

    async def memory(self, owner: str | None, session_id: str, count: int) -> tuple[list[dict[str, Any]], bool]:
        """Up to `count` cached turns, newest first, and whether the session's stored turns must be read back: when
        nothing is cached and the session is known (see `known_key`), or since a read back failed (see
        `incomplete_key`). One round trip, like `newest`."""
        keys, args = memory_call(self.settings, owner, session_id, count)
        return decode_memory(await self._memory(keys=keys, args=args))

    async def mark_incomplete(self, owner: str | None, session_id: str) -> None:
        """The session's stored turns could not be read back: a later turn tries again (see `incomplete_key`), once
        MEMORY_RECALL_RETRY_SECONDS have passed (see `recall_cooldown_key`)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            incomplete_commands(pipe, self.settings, owner, session_id, self.ttl_seconds)
            await pipe.execute()

    async def snapshot(
        self, owner: str | None, session_id: str, *, anchor: str | None = None, stored_too: bool = False
    ) -> RecentSnapshot:
        """The session's cached turns not stored yet (still in the outbox), newest first, and the cached turn
        `anchor` if there is one; with `stored_too`, every cached turn. `pending` says which are not stored yet."""
        flat = await self._snapshot(
            keys=self._snapshot_keys(owner, session_id), args=[anchor or "", "1" if stored_too else "0"]
        )
        return parse_snapshot(flat)

    def queue_snapshot(self, pipe: Any, owner: str | None, session_id: str) -> None:
        """Queue on `pipe` the snapshot of the turns not stored yet; its reply goes to `parse_snapshot`.

        EVAL, not EVALSHA: a pipeline cannot load a missing script without a round trip of its own first.
        """
        pipe.eval(_SNAPSHOT, 2, *self._snapshot_keys(owner, session_id), "", "0")

    def _snapshot_keys(self, owner: str | None, session_id: str) -> list[str]:
        return [self._key(owner, session_id), turns_key(self.settings)]

    async def forget(self, owner: str | None, session_id: str) -> None:
        """A deleted session: no cached turns, and nothing in the database to recall."""
        await self.redis.delete(
            self._key(owner, session_id),
            known_key(self.settings, owner, session_id),
            incomplete_key(self.settings, owner, session_id),
            recall_cooldown_key(self.settings, owner, session_id),
        )
