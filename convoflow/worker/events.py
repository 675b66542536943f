"""Task events (what Flower shows of each task) when tasks run in threads: none dropped, none held back.

Celery's worker buffers task events and publishes them from its event loop. With the threads pool a task's
"succeeded" event is added to that buffer by the pool thread while the loop thread publishes and then empties it,
so events are dropped or held back (celery/celery#10434; Celery 5.6 still does it): Flower then shows finished tasks
as running. Here an event sent from a pool thread is handed to the loop thread (kombu's hub wakes for it) and
buffered there like the loop's own, so only the loop thread touches the buffer; its time is the moment it was sent.
Publishing such events from the pool threads instead cost a history read ~0.4 ms while events were on.
"""

from __future__ import annotations

import functools
import threading
import time
from typing import Any

from celery import bootsteps
from celery.concurrency.thread import TaskPool as ThreadTaskPool


class LoopThreadTaskEvents(bootsteps.StartStopStep):  # type: ignore[type-arg]
    """Consumer step: after Celery's Events step (re)creates the dispatcher, events a threads pool sends reach it
    on the event loop's thread. Its `start` runs on that thread."""

    requires = ("celery.worker.consumer.events:Events",)

    def start(self, parent: Any) -> None:
        dispatcher = getattr(parent, "event_dispatcher", None)
        hub = getattr(parent, "hub", None)
        if dispatcher is None or hub is None or not isinstance(parent.pool, ThreadTaskPool):
            return
        send = dispatcher.send
        loop_thread = threading.get_ident()

        def send_on_loop_thread(type: str, **fields: Any) -> Any:
            if threading.get_ident() == loop_thread:
                return send(type, **fields)
            fields.setdefault("timestamp", time.time())
            hub.call_soon(functools.partial(send, type, **fields))
            return None

        dispatcher.send = send_on_loop_thread
