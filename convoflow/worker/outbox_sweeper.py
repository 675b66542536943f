"""A worker bootstep that sends again the answered turns that were never stored (see convoflow.services.outbox)."""

from __future__ import annotations

import contextlib
import logging
import uuid
from typing import Any

from redis.exceptions import LockError, RedisError

from convoflow.config import get_settings
from convoflow.dispatch.publisher import send_by_name
from convoflow.services import outbox, run_leases
from convoflow.services.redis_client import sync_redis
from convoflow.tasks import names
from convoflow.worker.threaded_step import ThreadedStep

logger = logging.getLogger(__name__)


class OutboxSweeper(ThreadedStep):
    """Every OUTBOX_SWEEP_INTERVAL seconds one worker (under a Redis lock) re-queues overdue turns, and the
    background runs whose worker died (convoflow.services.run_leases).

    It runs in a thread of its own, not on the worker's timer: Celery clears the event loop's timer whenever it
    reconnects to the broker, which would end the sweeps after the very outage they are there to repair.
    """

    thread_name = "outbox-sweeper"

    def run(self, worker: Any) -> None:
        interval = get_settings().outbox_sweep_interval
        while not self.stopping.wait(interval):
            self.sweep(worker)

    def sweep(self, worker: Any) -> None:
        settings = get_settings()
        client = sync_redis(settings.redis_url)
        try:
            lock = client.lock(outbox.lock_key(settings), timeout=30, blocking=False)
            if not lock.acquire():
                return
            try:
                turns = outbox.overdue(client, settings)
                if turns:
                    # Each turn keeps its turn id (the idempotency key) and its task id (its result's key).
                    for turn in turns:
                        turn.setdefault("task_id", str(uuid.uuid4()))
                    send_by_name(worker.app, names.SAVE_TURNS, {"turns": turns})
                    logger.warning("outbox: re-queued %d answered turns that were not stored in time", len(turns))
                run_leases.requeue_abandoned(
                    client,
                    settings,
                    lambda run_id, kwargs: send_by_name(worker.app, names.RUN_WORKFLOW, kwargs, run_id),
                )
            finally:
                with contextlib.suppress(LockError):
                    lock.release()
        except RedisError as exc:
            logger.warning("outbox sweep skipped: %s", exc.__class__.__name__)
        except Exception:
            logger.exception("outbox sweep failed")
