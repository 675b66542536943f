"""A worker bootstep whose work runs in threads of the worker's main process, from worker start to shutdown."""

from __future__ import annotations

import threading
from typing import Any

from celery import bootsteps


class ThreadedStep(bootsteps.StartStopStep):  # type: ignore[misc]
    """Runs `run(worker)` in `thread_count(worker)` daemon threads; `stopping` is set when the worker stops.

    Threads, not the worker's event-loop timer: Celery clears that timer whenever it reconnects to the broker.
    `run` must return soon after `stopping` is set (wait on it instead of sleeping).
    """

    thread_name = "convoflow-step"
    join_seconds = 10.0

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.threads: list[threading.Thread] = []
        self.stopping = threading.Event()

    def thread_count(self, worker: Any) -> int:
        return 1

    def run(self, worker: Any) -> None:
        raise NotImplementedError

    def start(self, worker: Any) -> None:
        count = self.thread_count(worker)
        self.threads = [
            threading.Thread(
                target=self.run,
                args=(worker,),
                name=self.thread_name if count == 1 else f"{self.thread_name}-{index}",
                daemon=True,
            )
            for index in range(count)
        ]
        for thread in self.threads:
            thread.start()

    def stop(self, worker: Any) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=self.join_seconds)
        self.threads = []
