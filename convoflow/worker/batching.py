"""A celery-batches task base whose messages are acknowledged one by one, only once their fate is settled.

celery-batches acknowledges a whole batch when it returns, whatever happened. Saves must never be
acknowledged before they are stored, queued again, or failed for good, so the batch function here
returns a decision per task id and the worker's main process acts on it:
"ack" (done), "requeue" (back to the queue now); a message left undecided (the pool process died) is
given back by the broker after its visibility timeout.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from celery.worker.request import Request
from celery_batches import Batches, SimpleRequest
from celery_batches.trace import apply_batches_task

ACK = "ack"
REQUEUE = "requeue"


class SettledBatches(Batches):  # type: ignore[misc]
    """Batches whose run() returns {task_id: "ack" | "requeue"}."""

    abstract = True

    def Strategy(self, task: Any, app: Any, consumer: Any) -> Any:
        # Celery builds a new strategy each time the consumer (re)connects to the broker, with a new timer;
        # celery-batches would keep the dead flush timer of the old connection and never flush again.
        stale: Any = getattr(self, "_tref", None)
        if stale is not None:
            stale.cancel()
        self._tref = None
        return super().Strategy(task, app, consumer)

    def flush(self, requests: Collection[Request]) -> Any:
        batch = list(requests)
        serializable = ([SimpleRequest.from_request(request) for request in batch],)

        def on_return(decisions: Mapping[str, str] | None) -> None:
            for request in batch:
                if decisions is not None and decisions.get(request.id) == ACK:
                    request.acknowledge()
                else:
                    # Undecided (the batch raised) counts as "try again".
                    request.reject(requeue=True)

        return self._pool.apply_async(apply_batches_task, (self, serializable, 0, None), callback=on_return)
