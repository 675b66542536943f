"""Micro-batching of saves in the API: the turns answered within a few milliseconds travel as one message.

Each /run still waits until the message holding its turn is in the broker, so an answered turn is always
queued; the broker, the thread pool and the worker see one message per batch instead of one per turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from convoflow.dispatch.gateway import TaskGateway

logger = logging.getLogger(__name__)

# How many times `linger` a batch waits for more turns when the API is busy.
BUSY_LINGER_FACTOR = 5


@dataclass
class _Pending:
    turn: dict[str, Any]
    owner: str | None
    done: asyncio.Future[str]


# Told about every batch the broker accepted: each turn (with its task id) and its owner.
OnQueued = Callable[[list[tuple[dict[str, Any], str | None]]], Awaitable[None]]


class SaveBatcher:
    """Collects turns for at most `linger` seconds or `max_turns` turns, then queues them with one message."""

    def __init__(
        self,
        gateway: TaskGateway,
        task: str,
        *,
        max_turns: int = 100,
        linger: float = 0.002,
        on_queued: OnQueued | None = None,
    ) -> None:
        self.gateway = gateway
        self.task = task
        self.max_turns = max_turns
        self.linger = linger
        self.on_queued = on_queued
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._runner: asyncio.Task[None] | None = None

    async def submit(self, turn: dict[str, Any], owner: str | None) -> str:
        """Queue one turn's save; returns its task id once the broker holds it (raises BrokerUnavailable)."""
        if self._runner is None or self._runner.done():
            # A fresh context: the runner serves every request, so it must not carry the first one's request id.
            self._runner = asyncio.create_task(self._run(), name="save-batcher", context=contextvars.Context())
        pending = _Pending(turn=turn, owner=owner, done=asyncio.get_running_loop().create_future())
        self._queue.put_nowait(pending)
        return await pending.done

    async def _run(self) -> None:
        while True:
            # Turns that arrived while the last batch was being queued mean the API is busy: waiting a little
            # longer then makes fewer, larger messages (each costs the worker about as much as one turn), while a
            # lone turn on a quiet API waits only `linger`.
            busy = not self._queue.empty()
            batch = [await self._queue.get()]
            linger = self.linger * BUSY_LINGER_FACTOR if busy else self.linger
            deadline = asyncio.get_running_loop().time() + linger
            while len(batch) < self.max_turns:
                timeout = deadline - asyncio.get_running_loop().time()
                if timeout <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), timeout))
                except TimeoutError:
                    break
            await self._flush(batch)

    async def _flush(self, batch: list[_Pending]) -> None:
        task_ids = [str(uuid.uuid4()) for _ in batch]
        turns = [{**pending.turn, "task_id": task_id} for pending, task_id in zip(batch, task_ids, strict=True)]
        try:
            await self.gateway.send_turns(self.task, turns, [pending.owner for pending in batch])
        except Exception as exc:  # every waiter gets the same error, e.g. BrokerUnavailable
            for pending in batch:
                if not pending.done.done():
                    pending.done.set_exception(exc)
            return
        try:
            if self.on_queued is not None:
                # Before anyone is answered: a client's next turn must find this one in the session's memory.
                await self.on_queued([(turn, pending.owner) for turn, pending in zip(turns, batch, strict=True)])
        finally:
            # The saves are queued whatever became of the memory: every waiter gets its task id.
            for pending, task_id in zip(batch, task_ids, strict=True):
                if not pending.done.done():
                    pending.done.set_result(task_id)

    async def close(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(BaseException):
                await self._runner
