"""Event loops for background runs, kept between runs with the model provider and Redis client each one serves.

A provider holds a connection pool bound to the event loop that opened it. Building one per run (a new loop each
time) cost an OpenAI-compatible provider ~30 ms of CPU per run (the client, its TLS context) and a new connection,
with its TLS handshake, to the model. A worker process now keeps its loops, one per run in progress at most, and a
run takes an idle one: its provider's open model connections and its Redis client serve run after run. The worker
closes them all when it shuts down (close_run_loops).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import redis.asyncio as aioredis

from convoflow.config import Settings
from convoflow.services.redis_client import reconnect_once
from convoflow.workflow import ConversationWorkflow, build_provider

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class RunLoop:
    """A loop, and what the runs on it reuse; one run at a time."""

    runner: asyncio.Runner
    workflow: ConversationWorkflow
    flags: aioredis.Redis  # cancel flags and lease renewals
    closed: bool = False

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run `work` to completion on this loop, in the caller's context (its task's request id, for one)."""
        try:
            return self.runner.run(work, context=contextvars.copy_context())
        except BaseException:
            self._cancel_leftovers()
            raise

    def _cancel_leftovers(self) -> None:
        """After a run that ended abnormally (a time limit raised inside the loop), cancel what it left running:
        a later run must not resume it."""
        leftovers = [task for task in asyncio.all_tasks(self.runner.get_loop()) if not task.done()]
        for task in leftovers:
            task.cancel()
        if leftovers:
            self.runner.run(_settle(leftovers))

    async def aclose(self) -> None:
        try:
            await self.flags.aclose()
        finally:
            await self.workflow.aclose()


async def _settle(tasks: list[asyncio.Task[Any]]) -> None:
    await asyncio.gather(*tasks, return_exceptions=True)


_open: list[RunLoop] = []  # every loop made, to close at shutdown
_idle: list[RunLoop] = []  # those no run holds now
_lock = threading.Lock()


@contextmanager
def run_loop(settings: Settings) -> Iterator[RunLoop]:
    """A run loop for one run: an idle one (the most recently used, so one thread's runs keep one), else a new one.

    There are never more loops than runs at once, whatever the pool (threads, prefork, gevent, solo).
    """
    with _lock:
        loop = _idle.pop() if _idle else None
    if loop is None:
        loop = _open_loop(settings)
        with _lock:
            _open.append(loop)
    try:
        yield loop
    finally:
        with _lock:
            if not loop.closed:
                _idle.append(loop)


def _open_loop(settings: Settings) -> RunLoop:
    runner = asyncio.Runner()

    async def open_clients() -> tuple[ConversationWorkflow, aioredis.Redis]:
        # In the loop: client sessions belong to the loop they are created in.
        workflow = ConversationWorkflow(build_provider(settings), settings)
        # Kept between runs, its connection can be one Redis closed meanwhile (a restart). Both commands it sends
        # (EXISTS, PEXPIRE) are safe to send twice.
        flags = aioredis.Redis.from_url(
            settings.redis_url, socket_connect_timeout=2, socket_timeout=5, retry=reconnect_once()
        )
        return workflow, flags

    workflow, flags = runner.run(open_clients())
    return RunLoop(runner, workflow, flags)


def close_run_loops() -> int:
    """Close every run loop with its provider and Redis client (at worker shutdown); returns how many."""
    with _lock:
        closing = list(_open)
        _open.clear()
        _idle.clear()
    for loop in closing:
        loop.closed = True
        try:
            loop.runner.run(loop.aclose())
        except Exception as exc:  # shutting down: log and go on with the others
            logger.warning("could not close a background-run loop cleanly: %s", exc.__class__.__name__)
        finally:
            loop.runner.close()
    return len(closing)
