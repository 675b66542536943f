"""Awaiting Celery results without blocking the event loop: one Redis pub/sub connection per process."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import redis.asyncio as aioredis
from celery import Celery, states

READY_STATES = states.READY_STATES
READ_STORED_AFTER_SECONDS = 0.05


class ResultWaiter:
    """Waits for task results published by Celery's Redis result backend (SET + PUBLISH on the same key).

    The waiter subscribes to a task's channel before the task is sent and, when no result was published within
    READ_STORED_AFTER_SECONDS, reads the key once, so a result stored before the subscription took effect is
    never missed.
    """

    def __init__(self, app: Celery, client: aioredis.Redis) -> None:
        self._app = app
        self._client = client
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    def key_for(self, task_id: str) -> str:
        key = self._app.backend.get_key_for_task(task_id)  # type: ignore[attr-defined]
        return key.decode() if isinstance(key, bytes) else str(key)

    async def expect(self, task_id: str) -> asyncio.Future[dict[str, Any]]:
        """Register interest in `task_id` before it is sent; returns a future of the stored meta."""
        key = self.key_for(task_id)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[key] = future
        await self._pubsub.subscribe(key)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read(), name="celery-result-reader")
        return future

    async def wait(self, task_id: str, future: asyncio.Future[dict[str, Any]], timeout: float) -> dict[str, Any]:
        key = self.key_for(task_id)
        try:
            # Usually the published result arrives first; reading the key covers a result published before the
            # subscription took effect, at the cost of one round trip only for results slower than this.
            with contextlib.suppress(TimeoutError):
                return await asyncio.wait_for(asyncio.shield(future), min(READ_STORED_AFTER_SECONDS, timeout))
            stored = await self._client.get(key)
            if stored is not None:
                meta = json.loads(stored)
                if meta.get("status") in READY_STATES:
                    return dict(meta)
            return await asyncio.wait_for(asyncio.shield(future), max(0.0, timeout - READ_STORED_AFTER_SECONDS))
        finally:
            self._waiting.pop(key, None)
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
                with contextlib.suppress(Exception):
                    await self._pubsub.reset()
                return
            if message is None or message.get("type") != "message":
                continue
            channel = message["channel"]
            channel = channel.decode() if isinstance(channel, bytes) else channel
            meta = json.loads(message["data"])
            waiter = self._waiting.get(channel)
            if waiter is not None and not waiter.done() and meta.get("status") in READY_STATES:
                waiter.set_result(meta)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]
