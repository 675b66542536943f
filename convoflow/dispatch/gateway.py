"""The API's only way to the database: send Celery tasks, remember their ids, await their results."""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import anyio
import redis.asyncio as aioredis
from celery import Celery
from celery.backends.redis import RedisBackend
from celery.result import AsyncResult
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError

from convoflow.config import Settings
from convoflow.dispatch.publisher import BeforePush, RedisTaskPublisher, publishes_directly, send_by_name
from convoflow.dispatch.registry import issued_task_key, issued_task_record
from convoflow.dispatch.results import ResultWaiter
from convoflow.errors import BrokerUnavailable, StateStoreUnavailable, TaskFailed, TaskTimedOut
from convoflow.logging_setup import describe_arguments
from convoflow.services import outbox

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IssuedTask:
    """What the API remembers of a task it sent: its kind and who asked for it."""

    task_id: str
    kind: str
    owner: str | None

    def visible_to(self, owner: str | None) -> bool:
        """An open service (no owner) sees every task; a caller with an API key only its own."""
        return owner is None or self.owner == owner


@dataclass(frozen=True)
class TaskStatus:
    task_id: str
    status: str
    result: Any
    error: str | None


class TaskGateway:
    """Sends tasks to the broker and reads their results for the API."""

    def __init__(self, settings: Settings, app: Celery, client: aioredis.Redis) -> None:
        self.settings = settings
        self.app = app
        self.redis = client
        self._uses_redis_results = isinstance(app.backend, RedisBackend)  # Sentinel's backend is one too
        self.results = ResultWaiter(app, client) if self._uses_redis_results else None
        # On a Redis broker (the same Redis as `client`) messages are pushed from the event loop; otherwise kombu
        # publishes them from a worker thread.
        self.publisher = (
            RedisTaskPublisher(app, client, settings.redis_key_prefix) if publishes_directly(settings) else None
        )

    def _unreachable(self, exc: RedisError) -> StateStoreUnavailable:
        return StateStoreUnavailable(f"Redis is unreachable at {self.settings.redis_address}: {exc.__class__.__name__}")

    def _registry_key(self, task_id: str) -> str:
        return issued_task_key(self.settings, task_id)

    async def _remember(self, issued: IssuedTask) -> None:
        record = issued_task_record(issued.kind, issued.owner)
        try:
            await self.redis.set(self._registry_key(issued.task_id), record, ex=self.settings.result_expires)
        except RedisError as exc:
            raise self._unreachable(exc) from exc

    async def _remember_many(self, issued: list[IssuedTask], outbox_turns: list[dict[str, Any]]) -> None:
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                for item in issued:
                    record = issued_task_record(item.kind, item.owner)
                    pipe.set(self._registry_key(item.task_id), record, ex=self.settings.result_expires)
                outbox.add_commands(pipe, self.settings, outbox_turns)
                await pipe.execute()
        except RedisError as exc:
            raise self._unreachable(exc) from exc

    async def lookup(self, task_id: str) -> IssuedTask | None:
        try:
            record = await self.redis.get(self._registry_key(task_id))
        except RedisError as exc:
            raise self._unreachable(exc) from exc
        if record is None:
            return None
        data = json.loads(record)
        return IssuedTask(task_id=task_id, kind=str(data.get("kind", "")), owner=data.get("owner"))

    def _publish(self, task: str, kwargs: dict[str, Any], task_id: str, options: dict[str, Any]) -> None:
        send_by_name(self.app, task, kwargs, task_id, **options)

    async def _push(
        self, task: str, kwargs: dict[str, Any], task_id: str, options: dict[str, Any], before: BeforePush | None
    ) -> list[Any] | None:
        """Push the message from the event loop when the broker allows it, with the commands `before` queues in
        the same round trip, and return their replies; None when kombu must publish it (nothing was run)."""
        if self.publisher is None or set(options) - {"expires", "reply_to"}:
            return None
        message = self.publisher.build(
            task,
            kwargs,
            task_id,
            expires=options.get("expires"),
            reply_to=options.get("reply_to"),
            kwargsrepr=describe_arguments(kwargs),
        )
        if message is None:
            return None
        return await self.publisher.publish(message, before)

    async def _run_before(self, before: BeforePush | None) -> list[Any]:
        if before is None:
            return []
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                before(pipe)
                return list(await pipe.execute())
        except RedisError as exc:
            raise self._unreachable(exc) from exc

    async def send(
        self,
        task: str,
        kwargs: dict[str, Any],
        *,
        kind: str,
        owner: str | None = None,
        task_id: str | None = None,
        register: bool = True,
        **options: Any,
    ) -> str:
        """Queue the task named `task`; returns its id once the broker has it (else raises BrokerUnavailable)."""
        task_id = task_id or str(uuid.uuid4())
        await self._send(task, kwargs, kind, owner, task_id, register, options, None)
        return task_id

    async def _send(
        self,
        task: str,
        kwargs: dict[str, Any],
        kind: str,
        owner: str | None,
        task_id: str,
        register: bool,
        options: dict[str, Any],
        before: BeforePush | None,
    ) -> list[Any]:
        """Queue the task, after the Redis commands `before` queues; returns their replies."""
        if register:
            await self._remember(IssuedTask(task_id=task_id, kind=kind, owner=owner))
        try:
            replies = await self._push(task, kwargs, task_id, options, before)
            if replies is None:
                replies = await self._run_before(before)
                # kombu's publish is blocking I/O with bounded retries (task_publish_retry_policy).
                await anyio.to_thread.run_sync(self._publish, task, kwargs, task_id, options)
        except (KombuOperationalError, OSError, RedisError) as exc:
            logger.warning("could not queue %s task: %s", kind, exc.__class__.__name__)
            raise BrokerUnavailable(
                f"the message broker is unreachable ({self._broker_address()}); nothing was queued, try again"
            ) from exc
        return replies

    async def send_turns(self, task: str, turns: list[dict[str, Any]], owners: list[str | None]) -> str:
        """Queue one message carrying several turns, each with its own `task_id` (and owner).

        Each turn's task id is remembered, so GET /task/{id} answers for it like for any other task, and
        each turn goes into the outbox in the same Redis transaction, before the message is published.
        """
        issued = [
            IssuedTask(task_id=str(turn["task_id"]), kind="save", owner=owner)
            for turn, owner in zip(turns, owners, strict=True)
        ]
        await self._remember_many(issued, turns)
        try:
            return await self.send(task, {"turns": turns}, kind="save-batch", register=False)
        except BrokerUnavailable:
            # The client hears 503 for these turns: they must not be stored behind its back by the sweeper.
            with contextlib.suppress(RedisError):
                async with self.redis.pipeline(transaction=True) as pipe:
                    outbox.remove_commands(pipe, self.settings, [str(turn["turn_id"]) for turn in turns])
                    await pipe.execute()
            raise

    async def call(
        self,
        task: str,
        kwargs: dict[str, Any],
        *,
        kind: str,
        owner: str | None = None,
        timeout: float | None = None,
        register: bool = True,
        **options: Any,
    ) -> dict[str, Any]:
        """Send `task` and wait (without blocking the loop) for its result.

        `register=False` for a task whose id the client never sees (a history read): GET /task cannot be asked
        about it, so it needs no record.
        """
        _replies, result = await self.call_after(
            None, task, kwargs, kind=kind, owner=owner, timeout=timeout, register=register, **options
        )
        return result

    async def call_after(
        self,
        before: BeforePush | None,
        task: str,
        kwargs: dict[str, Any],
        *,
        kind: str,
        owner: str | None = None,
        timeout: float | None = None,
        register: bool = True,
        **options: Any,
    ) -> tuple[list[Any], dict[str, Any]]:
        """`call`, with Redis commands that `before(pipeline)` queues run just before the task is pushed (in the
        same round trip on a Redis broker); returns their replies and the task's result."""
        timeout = timeout or self.settings.task_wait_timeout
        task_id = str(uuid.uuid4())
        options.setdefault("expires", timeout)
        if self.results is None:
            replies = await self._send(task, kwargs, kind, owner, task_id, register, options, before)
            return replies, await self._wait_in_thread(task_id, timeout)
        try:
            future = await self.results.expect(task_id)
        except RedisError as exc:
            raise self._unreachable(exc) from exc
        # The worker publishes the result on this process's reply channel, which the waiter listens to already.
        options["reply_to"] = self.results.reply_to
        try:
            replies = await self._send(task, kwargs, kind, owner, task_id, register, options, before)
        except BaseException:
            self.results.forget(task_id)
            raise
        try:
            meta = await self.results.wait(task_id, future, timeout)
        except TimeoutError as exc:
            raise TaskTimedOut(
                f"no worker answered within {timeout:g}s: is a worker consuming the 'database' queue?",
                task_id=task_id,
            ) from exc
        except RedisError as exc:
            raise StateStoreUnavailable(f"lost the connection to Redis at {self.settings.redis_address}") from exc
        return replies, self._unwrap(task_id, meta.get("status", ""), meta.get("result"))

    async def _wait_in_thread(self, task_id: str, timeout: float) -> dict[str, Any]:
        result: AsyncResult[Any] = AsyncResult(task_id, app=self.app)
        try:
            value = await anyio.to_thread.run_sync(lambda: result.get(timeout=timeout, propagate=False))
        except TimeoutError as exc:
            raise TaskTimedOut(f"no worker answered within {timeout:g}s", task_id=task_id) from exc
        return self._unwrap(task_id, result.state, value)

    @staticmethod
    def _unwrap(task_id: str, status: str, result: Any) -> dict[str, Any]:
        if status != "SUCCESS" or not isinstance(result, dict):
            raise TaskFailed(f"the task ended in state {status}", task_id=task_id)
        return {**result, "task_id": task_id}

    async def status(self, task_id: str) -> TaskStatus:
        """Celery's state of a task this service issued."""

        def read() -> TaskStatus:
            result: AsyncResult[Any] = AsyncResult(task_id, app=self.app)
            state = result.state
            value = result.result
            if state == "FAILURE" or isinstance(value, BaseException):
                return TaskStatus(task_id, state, None, f"{value.__class__.__name__}: {value}")
            return TaskStatus(task_id, state, value if state == "SUCCESS" else None, None)

        try:
            return await anyio.to_thread.run_sync(read)
        except (RedisError, OSError, KombuOperationalError) as exc:
            raise StateStoreUnavailable(f"the result backend is unreachable ({self.settings.redis_address})") from exc

    async def ping_workers(self, timeout: float = 1.0) -> list[str]:
        def ping() -> list[str]:
            replies = self.app.control.ping(timeout=timeout) or []
            return sorted(name for reply in replies for name in reply)

        return await anyio.to_thread.run_sync(ping)

    async def ping_broker(self) -> None:
        def connect() -> None:
            with self.app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)

        await anyio.to_thread.run_sync(connect)

    def _broker_address(self) -> str:
        connection = self.app.connection_for_write()
        try:
            return str(connection.as_uri())
        finally:
            connection.release()

    async def close(self) -> None:
        if self.results is not None:
            await self.results.close()
        await self.redis.aclose()
