"""Idempotency-Key on POST /run and /run/stream: a repeated request gets the first answer, not a second model call.

Each (caller, key) has one Redis record. The first request claims it with SET NX (state `pending`,
expiring after the longest a model call can take), runs, and replaces the claim with its answer
(state `done`, kept IDEMPOTENCY_TTL_SECONDS). A request that finds a record:

- with a different body fingerprint: refused (422), the key belongs to another request;
- `done`: gets the stored answer (a replay), without running the model;
- `pending`: waits up to IDEMPOTENCY_WAIT_SECONDS for the first to finish, then gets 409 (retry later).

A first request that fails (model down, broker down) releases its claim, so a retry with the same key runs.

A stream (`idempotent_stream`) claims its key before its first event, stores its answer when its `done` event is
due (the record /run stores: the same key and body replay the same turn on either endpoint), and releases the
claim when it ends with an `error` event or its client leaves before `done` (the partial answer is saved as an
interrupted turn; a retry with the key answers anew).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from convoflow.config import Settings
from convoflow.errors import IdempotencyKeyInUse, IdempotencyKeyReused

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.05

# Replace (or delete) the record only while it still holds our claim: a claim that outlived its
# lease may already belong to another request.
_SWAP_IF_CLAIMED = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return 0
end
if ARGV[2] == '' then
    redis.call('DEL', KEYS[1])
else
    redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
end
return 1
"""


@dataclass(frozen=True)
class Outcome:
    """The answer to send, and whether it is a replay of an earlier request's answer."""

    response: dict[str, Any]
    replayed: bool


def fingerprint(request: Mapping[str, Any]) -> str:
    """A hash of the request's content, independent of key order and JSON spacing."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Claim:
    """A key this request holds: the Redis key, the claim written there, the request's fingerprint."""

    key: str
    token: str
    fingerprint: str


class IdempotentRequests:
    """Runs a request at most once per (owner, Idempotency-Key) while the key is remembered."""

    def __init__(self, settings: Settings, client: aioredis.Redis) -> None:
        self.settings = settings
        self.redis = client
        self._swap = client.register_script(_SWAP_IF_CLAIMED)

    def _key(self, owner: str | None, idempotency_key: str) -> str:
        # Hashed: the client's key can hold any printable character and is nobody else's business.
        hashed = hashlib.sha256(idempotency_key.encode("utf-8", "surrogatepass")).hexdigest()
        return self.settings.redis_key("idempotency", owner or "-", hashed)

    async def run(
        self,
        owner: str | None,
        idempotency_key: str | None,
        request: Mapping[str, Any],
        produce: Callable[[], Awaitable[dict[str, Any]]],
    ) -> Outcome:
        """`produce()`'s answer, or the answer stored for this key; `produce` runs at most once per key."""
        if idempotency_key is None:
            return Outcome(await produce(), replayed=False)
        started = await self.begin(owner, idempotency_key, request)
        if isinstance(started, Outcome):
            return started
        try:
            response = await produce()
        except BaseException:
            await self.release(started)
            raise
        await self.finish(started, response)
        return Outcome(response, replayed=False)

    async def begin(self, owner: str | None, idempotency_key: str, request: Mapping[str, Any]) -> Outcome | Claim:
        """Claim the key for this request, or get the answer stored for it (a replay).

        Raises IdempotencyKeyReused for another body, IdempotencyKeyInUse when the first request is still running
        after IDEMPOTENCY_WAIT_SECONDS. A Claim must end with `finish` or `release`.
        """
        key = self._key(owner, idempotency_key)
        request_hash = fingerprint(request)
        deadline = time.monotonic() + self.settings.idempotency_wait_seconds
        while True:
            claim = json.dumps({"state": "pending", "fingerprint": request_hash, "claim": uuid.uuid4().hex})
            if await self.redis.set(key, claim, nx=True, ex=self.settings.idempotency_lease_seconds):
                return Claim(key, claim, request_hash)
            raw = await self.redis.get(key)
            if raw is None:  # the first request failed and let go of the key in between: claim it
                continue
            if raw == claim.encode():  # ours: the SET ran, but its reply was lost and the client sent it again
                return Claim(key, claim, request_hash)
            record = json.loads(raw)
            if record.get("fingerprint") != request_hash:
                message = "this Idempotency-Key was already used for a request with a different body"
                raise IdempotencyKeyReused(
                    f"{message}; use a new key for a new request",
                    detail=[{"loc": ["header", "Idempotency-Key"], "msg": message, "type": "idempotency_key_reused"}],
                )
            if record.get("state") == "done":
                response = dict(record["response"])
                logger.info("replayed the answer of turn %s for a repeated Idempotency-Key", response.get("turn_id"))
                return Outcome(response, replayed=True)
            if time.monotonic() >= deadline:
                raise IdempotencyKeyInUse(
                    "a request with this Idempotency-Key is still running; retry shortly to get its answer"
                )
            await asyncio.sleep(POLL_SECONDS)

    async def finish(self, claim: Claim, response: dict[str, Any]) -> None:
        """Store the claimed request's answer for its replays."""
        done = json.dumps({"state": "done", "fingerprint": claim.fingerprint, "response": response})
        await self._swap(keys=[claim.key], args=[claim.token, done, self.settings.idempotency_ttl_seconds])

    async def release(self, claim: Claim) -> None:
        """Let go of the key (the request failed): a retry with it runs. Never raises, even when cancelled."""
        with anyio.CancelScope(shield=True), contextlib.suppress(RedisError):
            await self._swap(keys=[claim.key], args=[claim.token, "", 0])
