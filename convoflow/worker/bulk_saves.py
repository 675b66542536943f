"""A worker bootstep that takes queued single saves off the Redis broker many at a time.

kombu's Redis consumer handles one message per round trip (BRPOP), records it as unacknowledged with
another, and acknowledges it with a third; for a queue of small saves that caps a worker far below
what one database transaction per batch can store. This step pops up to SAVE_BATCH_SIZE save messages
with one Lua script that, atomically, also records them in kombu's own unacknowledged index (so kombu's
visibility-timeout sweep gives them back if this worker dies), stores them in one transaction, and
acknowledges them with one pipeline. Other messages (and saves delayed by a retry countdown) are put
back where they were, for kombu's consumer. Only used with a Redis broker.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from convoflow.config import Settings, get_settings
from convoflow.jsoncodec import loads
from convoflow.worker.queues import DATABASE_QUEUE
from convoflow.worker.threaded_step import ThreadedStep

logger = logging.getLogger(__name__)

SAVE_TASK = "celery_tasks.save_conversation_task"
# Threads taking saves: one per pool process, up to this many (each holds a database connection while storing).
MAX_THREADS = 4
IDLE_POLL_SECONDS = 0.2

# KEYS: queue list, kombu's unacked hash, kombu's unacked index. ARGV: how many, now, task name.
# kombu publishes with LPUSH and consumes from the right, so RPOP takes the oldest messages first.
TAKE_SAVES = """
local popped = redis.call('RPOP', KEYS[1], ARGV[1])
if not popped then return {} end
local taken, others = {}, {}
for _, raw in ipairs(popped) do
  local ok, message = pcall(cjson.decode, raw)
  local headers = ok and type(message) == 'table' and message['headers'] or nil
  local props = ok and type(message) == 'table' and message['properties'] or nil
  if headers and props and headers['task'] == ARGV[3] and (headers['eta'] == nil or headers['eta'] == cjson.null)
     and type(props['delivery_tag']) == 'string' and type(props['delivery_info']) == 'table' then
    local info = props['delivery_info']
    local route = cjson.encode(info['exchange'] or '') .. ',' .. cjson.encode(info['routing_key'] or '')
    local entry = '[' .. raw .. ',' .. route .. ']'
    redis.call('HSET', KEYS[2], props['delivery_tag'], entry)
    redis.call('ZADD', KEYS[3], ARGV[2], props['delivery_tag'])
    table.insert(taken, raw)
  else
    table.insert(others, raw)
  end
end
for i = #others, 1, -1 do redis.call('RPUSH', KEYS[1], others[i]) end
return taken
"""


@dataclass
class TakenSave:
    """A save message taken off the queue, shaped like a request for convoflow.tasks.save_outcomes.settle."""

    id: str
    tag: str
    raw: bytes
    args: Sequence[Any]
    kwargs: Mapping[str, Any]
    request_dict: Mapping[str, Any] | None = field(default_factory=dict)


def decode(raw: bytes) -> TakenSave:
    message = loads(raw)
    headers, properties = message["headers"], message["properties"]
    if message.get("content-type") != "application/json" or properties.get("body_encoding") != "base64":
        raise ValueError("not a JSON message in base64")
    args, kwargs, _embed = loads(base64.b64decode(message["body"]))
    return TakenSave(
        id=str(headers["id"]),
        tag=str(properties["delivery_tag"]),
        raw=raw,
        args=list(args),
        kwargs=dict(kwargs),
        request_dict={"retries": int(headers.get("retries") or 0)},
    )


def dead_letter_undecodable(settings: Settings, messages: list[tuple[bytes, str]]) -> list[str]:
    """Keep save messages whose body cannot be read (another serializer, a damaged body) as dead letters.

    Returns the delivery tags of those kept, to be acknowledged: given back to the queue they would come back
    after every visibility timeout, forever. A message that could not be kept (Redis refused) is not returned.
    """
    from convoflow.services.dead_letters import record_dead_saves

    entries: list[dict[str, Any]] = []
    tags: list[str] = []
    for raw, error in messages:
        envelope = loads(raw)  # the take script read this envelope already; only its body is unreadable
        entries.append(
            {
                "task_id": str(envelope["headers"].get("id")),
                "error": f"undecodable save message: {error}"[:300],
                "message": raw.decode("utf-8", "replace"),
            }
        )
        tags.append(str(envelope["properties"]["delivery_tag"]))
    if not entries:
        return []
    try:
        record_dead_saves(settings, entries)
    except redis.RedisError:
        logger.warning("bulk saves: %d undecodable messages left for the visibility timeout", len(entries))
        return []
    logger.error("bulk saves: %d undecodable save messages kept as dead letters", len(entries))
    return tags


class BulkSaveConsumer(ThreadedStep):
    """Runs threads in the worker's main process that store queued saves in bulk."""

    requires = ("celery.worker.components:Pool",)
    thread_name = "bulk-saves"
    join_seconds = 30.0

    def include_if(self, worker: Any) -> bool:
        settings = get_settings()
        consumes = {queue.name for queue in worker.app.amqp.queues.consume_from.values()}
        return bool(
            settings.bulk_save_consumer
            and settings.broker_url.startswith(("redis://", "rediss://"))
            and DATABASE_QUEUE in consumes
        )

    def thread_count(self, worker: Any) -> int:
        # Several threads, so that one stores a batch while another waits on its commit or takes the next one
        # (the script takes messages atomically: no two threads get the same save).
        return max(1, min(int(worker.concurrency or 1), MAX_THREADS))

    def run(self, worker: Any) -> None:
        settings = get_settings()
        client = redis.Redis.from_url(settings.broker_url, socket_timeout=10, socket_connect_timeout=5)
        take = client.register_script(TAKE_SAVES)
        prefix = settings.redis_key_prefix
        keys = [prefix + DATABASE_QUEUE, prefix + "unacked", prefix + "unacked_index"]
        task = worker.app.tasks[SAVE_TASK]
        while not self.stopping.is_set():
            try:
                raw_messages = take(keys=keys, args=[settings.save_batch_size, time.time(), SAVE_TASK])
            except redis.RedisError as exc:
                logger.warning("bulk saves: broker unavailable (%s); retrying", exc.__class__.__name__)
                self.stopping.wait(1.0)
                continue
            if not raw_messages:
                # An idle queue is looked at a few times a second: kombu's own consumer takes a trickle of saves
                # at once anyway, and polling every few milliseconds would cost the worker's other tasks.
                self.stopping.wait(IDLE_POLL_SECONDS)
                continue
            try:
                self._store(client, keys, task, settings, raw_messages)
            except Exception:
                # Left in kombu's unacknowledged index: the broker gives them back after the visibility timeout.
                logger.exception("bulk saves: a batch of %d could not be settled", len(raw_messages))
        client.close()

    def _store(self, client: redis.Redis, keys: list[str], task: Any, settings: Settings, raws: list[bytes]) -> None:
        # Imported here: this module is loaded wherever the Celery app is built, the API included, which loads no
        # database code.
        from convoflow.services.turn_batches import QueuedSave, save_batch
        from convoflow.tasks.save_outcomes import settle
        from convoflow.worker.batching import ACK

        taken: list[TakenSave] = []
        undecodable: list[tuple[bytes, str]] = []
        for raw in raws:
            try:
                taken.append(decode(raw))
            except (ValueError, KeyError, TypeError) as exc:
                undecodable.append((raw, f"{exc.__class__.__name__}: {exc}"))
        saves = [QueuedSave(item.id, item.args, item.kwargs) for item in taken]
        decisions = settle(task, settings, taken, save_batch(settings, saves))
        queue, unacked, index = keys
        tags = [item.tag for item in taken] + dead_letter_undecodable(settings, undecodable)
        again = [item.raw for item in taken if decisions.get(item.id) != ACK]
        if tags:
            with client.pipeline(transaction=True) as pipe:
                pipe.zrem(index, *tags)
                pipe.hdel(unacked, *tags)
                if again:
                    pipe.rpush(queue, *again)  # next in line again
                pipe.execute()
