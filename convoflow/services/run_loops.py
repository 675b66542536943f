"""One event loop per worker thread for background runs, kept with the model provider and Redis client it serves.

A provider holds a connection pool bound to the event loop that opened it. Building one per run (a new loop each
time) cost an OpenAI-compatible provider ~30 ms of CPU per run (the client, its TLS context) and a new connection,
with its TLS handshake, to the model. Each pool thread (or prefork child) now keeps one loop between runs, so its
provider, its open model connections and its Redis client serve every run that thread handles. The worker closes
them all when it shuts down (close_run_loops).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import redis.asyncio as aioredis

from convoflow.config import Settings
from convoflow.workflow import ConversationWorkflow, build_provider

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class RunLoop:
    """A thread's loop, and what runs on it reuse."""

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


_local = threading.local()
_open: list[RunLoop] = []
_open_lock = threading.Lock()


def run_loop(settings: Settings) -> RunLoop:
    """The calling thread's run loop, made on first use."""
    current: RunLoop | None = getattr(_local, "run_loop", None)
    if current is None or current.closed:
        runner = asyncio.Runner()

        async def open_clients() -> tuple[ConversationWorkflow, aioredis.Redis]:
            # In the loop: client sessions belong to the loop they are created in.
            workflow = ConversationWorkflow(build_provider(settings), settings)
            flags = aioredis.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=5)
            return workflow, flags

        workflow, flags = runner.run(open_clients())
        current = RunLoop(runner, workflow, flags)
        _local.run_loop = current
        with _open_lock:
            _open.append(current)
    return current


def close_run_loops() -> int:
    """Close every thread's run loop with its provider and Redis client (at worker shutdown); returns how many."""
    with _open_lock:
        closing = list(_open)
        _open.clear()
    for loop in closing:
        loop.closed = True  # its thread makes a new one if it runs again
        try:
            loop.runner.run(loop.aclose())
        except Exception as exc:  # shutting down: log and go on with the others
            logger.warning("could not close a background-run loop cleanly: %s", exc.__class__.__name__)
        finally:
            loop.runner.close()
    return len(closing)
