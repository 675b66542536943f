"""Awaiting Celery results without blocking the event loop: one Redis pub/sub connection per process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

import redis.asyncio as aioredis
from celery import Celery, states

from convoflow.jsoncodec import loads
from convoflow.worker.results import REPLY_PREFIX, channel_named

logger = logging.getLogger(__name__)

READY_STATES = states.READY_STATES
READ_STORED_AFTER_SECONDS = 0.05


class ResultWaiter:
    """Waits for task results that workers publish on this process's reply channel.

    The process subscribes once to its own channel (`reply_to`, which the gateway puts in every message it waits
    for) and workers publish a finished task's state there (convoflow.worker.results), so a wait costs no
    subscription of its own. A result not heard within `fallback_after` seconds (a slow task; the first one,
    sent before the subscription took effect; one from a worker that publishes on the task's own channel, as
    Celery does) is then also awaited on the task's channel and read once from its key, so none is missed.
    """

    def __init__(self, app: Celery, client: aioredis.Redis, fallback_after: float = READ_STORED_AFTER_SECONDS) -> None:
        self._app = app
        self._client = client
        self._fallback_after = fallback_after
        self.fallbacks = 0  # waits that went on past `fallback_after` on the task's own channel and key
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        self.reply_to = f"{REPLY_PREFIX}{uuid.uuid4().hex}"
        self._channel = channel_named(app, self.reply_to)
        self._listening = False
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None

    def key_for(self, task_id: str) -> str:
        key = self._app.backend.get_key_for_task(task_id)  # type: ignore[attr-defined]
        return key.decode() if isinstance(key, bytes) else str(key)

    async def expect(self, task_id: str) -> asyncio.Future[dict[str, Any]]:
        """Register interest in `task_id` before it is sent; returns a future of the stored meta."""
        if not self._listening:
            await self._pubsub.subscribe(self._channel)  # raises RedisError with nothing registered
            self._listening = True
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[task_id] = future
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read(), name="celery-result-reader")
        return future

    @property
    def pending(self) -> int:
        """How many tasks are awaited now."""
        return len(self._waiting)

    def forget(self, task_id: str) -> None:
        """Stop awaiting a task that was never sent."""
        self._waiting.pop(task_id, None)

    async def wait(self, task_id: str, future: asyncio.Future[dict[str, Any]], timeout: float) -> dict[str, Any]:
        key: str | None = None
        try:
            with contextlib.suppress(TimeoutError):
                return await asyncio.wait_for(asyncio.shield(future), min(self._fallback_after, timeout))
            self.fallbacks += 1
            key = self.key_for(task_id)
            await self._pubsub.subscribe(key)  # before reading the key: a result stored after the read is heard
            stored = await self._client.get(key)
            if stored is not None:
                meta = loads(stored)
                if meta.get("status") in READY_STATES:
                    return dict(meta)
            return await asyncio.wait_for(asyncio.shield(future), max(0.0, timeout - self._fallback_after))
        finally:
            self._waiting.pop(task_id, None)
            if key is not None:
                with contextlib.suppress(Exception):
                    await self._pubsub.unsubscribe(key)

    async def _read(self) -> None:
        while self._waiting or self._pubsub.subscribed:
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except Exception as exc:  # the connection broke: fail every waiter, a new reader starts later
                for future in self._waiting.values():
                    if not future.done():
                        future.set_exception(exc)
                self._waiting.clear()
                self._listening = False
                with contextlib.suppress(Exception):
                    await self._pubsub.reset()
                return
            if message is None or message.get("type") != "message":
                continue
            try:
                meta = loads(message["data"])
                task_id = str(meta["task_id"])
            except (ValueError, KeyError, TypeError):
                logger.warning("ignored a message on a result channel that is no task state")
                continue
            waiter = self._waiting.get(task_id)
            if waiter is not None and not waiter.done() and meta.get("status") in READY_STATES:
                waiter.set_result(meta)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]
