"""Leases of background runs: a run whose worker died is queued again instead of staying `started` forever.

A run's message is acknowledged when the run starts (it may outlast the broker's visibility timeout, and a
redelivered message would ask the model twice), so the broker cannot give back the run of a worker that died.
Instead the run records itself when it claims its id: its claim (`running`), a lease that expires after
RUN_LEASE_SECONDS unless the run renews it (every third of that while the model works), and its arguments in
the pending-runs hash. When it ends, however it ends, the claim becomes `done` and both other records go.

The outbox sweeper (one worker at a time, under its lock) looks at the pending runs: a run still `running` whose
lease lapsed was abandoned; it is marked `requeued:<time>` and its message sent again with the same task id and
arguments, so GET /task shows the same run finishing, and its fixed turn id keeps its save single. A delivery of a
`requeued` run may claim it; any other delivery of a claimed run is a duplicate and is skipped. A run requeued
but not claimed within OUTBOX_REDELIVER_AFTER is sent once more (its message may have been lost too).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from convoflow.config import Settings

logger = logging.getLogger(__name__)

REQUEUED = "requeued:"

# KEYS: claim, lease, pending runs. ARGV: run id, claim ttl (s), lease ttl (ms), the run's arguments, REQUEUED.
CLAIM = """
local state = redis.call('GET', KEYS[1])
if state and string.sub(state, 1, #ARGV[5]) ~= ARGV[5] then return 0 end
redis.call('SET', KEYS[1], 'running', 'EX', ARGV[2])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
return 1
"""

# KEYS: claim, lease. ARGV: the requeued marker to set, the time before which a requeued run is sent again,
# REQUEUED.
# 1: abandoned, now marked requeued (send it again); -1: finished or forgotten (drop it); 0: leave it.
ABANDONED = """
local state = redis.call('GET', KEYS[1])
if not state or state == 'done' then return -1 end
if state == 'running' and redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
  return 1
end
local prefix = #ARGV[3]
if string.sub(state, 1, prefix) == ARGV[3] and tonumber(string.sub(state, prefix + 1)) < tonumber(ARGV[2]) then
  redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
  return 1
end
return 0
"""


def claim_key(settings: Settings, run_id: str) -> str:
    return settings.redis_key("run", run_id, "claim")


def lease_key(settings: Settings, run_id: str) -> str:
    return settings.redis_key("run", run_id, "lease")


def pending_key(settings: Settings) -> str:
    return settings.redis_key("run", "pending")


def lease_ms(settings: Settings) -> int:
    return math.ceil(settings.run_lease_seconds * 1000)


def claim(client: Any, settings: Settings, run_id: str, arguments: Mapping[str, Any]) -> bool:
    """Claim the run for this delivery (recording its lease and arguments); False when another delivery has it."""
    keys = [claim_key(settings, run_id), lease_key(settings, run_id), pending_key(settings)]
    args = [run_id, settings.task_time_limit + 60, lease_ms(settings), json.dumps(dict(arguments)), REQUEUED]
    return bool(client.register_script(CLAIM)(keys=keys, args=args))


def finish(client: Any, settings: Settings, run_id: str) -> None:
    """The run ended (answered, failed or cancelled): no later delivery runs it again, and nobody requeues it."""
    with client.pipeline(transaction=True) as pipe:
        pipe.set(claim_key(settings, run_id), "done", ex=settings.result_expires)
        pipe.delete(lease_key(settings, run_id))
        pipe.hdel(pending_key(settings), run_id)
        pipe.execute()


def requeue_abandoned(client: Any, settings: Settings, send: Callable[[str, dict[str, Any]], None]) -> list[str]:
    """Send again the runs whose worker stopped renewing their lease; returns their ids."""
    abandoned = client.register_script(ABANDONED)
    requeued: list[str] = []
    for raw_id, raw_arguments in client.hscan_iter(pending_key(settings), count=500):
        run_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
        now = time.time()
        verdict = abandoned(
            keys=[claim_key(settings, run_id), lease_key(settings, run_id)],
            args=[f"{REQUEUED}{now}", now - settings.outbox_redeliver_after, REQUEUED],
        )
        if verdict == -1:
            client.hdel(pending_key(settings), run_id)
        elif verdict == 1:
            # Marked first, then sent: a failed send leaves it marked, and it is sent again after a while.
            send(run_id, json.loads(raw_arguments))
            requeued.append(run_id)
    if requeued:
        logger.warning("runs: queued again %d background runs whose worker stopped", len(requeued))
    return requeued
