"""Task events (what Flower shows of each task) published as they happen when tasks run in threads.

Celery's worker buffers task events and publishes them from its event loop. With the threads pool a task's
"succeeded" event is added to that buffer by the pool thread while the loop thread publishes and then empties it,
so events are dropped or held back (celery/celery#10434; Celery 5.6 still does it): Flower then shows finished tasks
as running. Without the buffer, each event is published at once under the dispatcher's lock by the thread that
sends it, one PUBLISH per event; only while events are on (`-E`, or Flower asks for them).
"""

from __future__ import annotations

from typing import Any

from celery import bootsteps
from celery.concurrency.thread import TaskPool as ThreadTaskPool


class UnbufferedTaskEvents(bootsteps.StartStopStep):  # type: ignore[type-arg]
    """Consumer step: after Celery's Events step (re)creates the dispatcher, a threads pool's events skip the buffer."""

    requires = ("celery.worker.consumer.events:Events",)

    def start(self, parent: Any) -> None:
        dispatcher = getattr(parent, "event_dispatcher", None)
        if dispatcher is not None and isinstance(parent.pool, ThreadTaskPool):
            dispatcher.buffer_group = frozenset()
