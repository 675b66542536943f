"""Background runs on a worker: claim the run once, answer while watching for a cancel, queue the turn's save.

Cancelling is cooperative so that it works on every pool (prefork, threads, gevent, solo): the API sets
a flag in Redis, and the run looks at it before it starts, every CANCEL_POLL_SECONDS while the model
works (the model call is then abandoned), and once more before anything is saved. A cancelled run
saves nothing. Celery's `revoke(terminate=True)` is not used: the thread pool cannot terminate a task,
and killing a prefork child mid-call gains nothing over the flag.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from celery import current_app
from redis.exceptions import RedisError

from convoflow.config import Settings
from convoflow.dispatch.registry import issued_task_key, issued_task_record
from convoflow.services import memory, outbox, run_leases
from convoflow.services.redis_client import sync_redis
from convoflow.services.run_loops import RunLoop, run_loop
from convoflow.services.turns import answered_turn
from convoflow.tasks import names
from convoflow.workflow import PriorTurn, WorkflowAnswer

logger = logging.getLogger(__name__)

CANCEL_POLL_SECONDS = 0.25


class RunCancelled(Exception):
    """The client cancelled the run; nothing was saved."""


class DuplicateDelivery(Exception):
    """Another delivery of this run's message already claimed it (the broker redelivers unacknowledged messages)."""


@dataclass(frozen=True)
class BackgroundRun:
    """One queued turn: its ids are fixed when it is queued, so a retried save stores it once."""

    run_id: str
    user_input: str
    session_id: str
    turn_id: uuid.UUID
    owner: str | None = None


def cancel_key(settings: Settings, run_id: str) -> str:
    return settings.redis_key("run", run_id, "cancel")


def execute(settings: Settings, run: BackgroundRun, *, on_start: Callable[[], None]) -> dict[str, Any]:
    """Answer the run's input with the session's memory and queue its save; returns the run's result.

    Raises DuplicateDelivery, RunCancelled, or ModelError when the model cannot answer.
    """
    client = sync_redis(settings.redis_url)
    if not run_leases.claim(client, settings, run.run_id, arguments(run)):
        raise DuplicateDelivery(run.run_id)
    try:
        if client.exists(cancel_key(settings, run.run_id)):
            raise RunCancelled(run.run_id)
        on_start()
        newest = memory.newest_turns(settings, run.owner, run.session_id, settings.history_turns)
        prior = [PriorTurn(item["user_input"], item["ai_response"]) for item in reversed(newest)]
        with run_loop(settings) as loop:
            answer = loop.run(_answer_unless_cancelled(settings, run, prior, loop))
        if client.exists(cancel_key(settings, run.run_id)):
            raise RunCancelled(run.run_id)  # cancelled just as the model finished: still nothing is saved
        save_task_id = _queue_save(settings, run, answer)
        return {
            "answer": answer.answer,
            "session_id": run.session_id,
            "turn_id": str(run.turn_id),
            "save_task_id": save_task_id,
            "model": answer.model,
        }
    finally:
        # Whatever the outcome, a later delivery of the same message must not run the turn again.
        run_leases.finish(client, settings, run.run_id)


def arguments(run: BackgroundRun) -> dict[str, Any]:
    """The run task's keyword arguments, as the sweeper sends them again (convoflow.services.run_leases)."""
    return {"user_input": run.user_input, "session_id": run.session_id, "turn_id": str(run.turn_id), "owner": run.owner}


async def _answer_unless_cancelled(
    settings: Settings, run: BackgroundRun, prior: list[PriorTurn], loop: RunLoop
) -> WorkflowAnswer:
    lease = run_leases.lease_key(settings, run.run_id)
    return await _unless(
        loop.workflow.run(run.user_input, prior),
        lambda: loop.flags.exists(cancel_key(settings, run.run_id)),
        renew=lambda: loop.flags.pexpire(lease, run_leases.lease_ms(settings)),
        renew_every=settings.run_lease_seconds / 3,
    )


async def _unless(
    work: Awaitable[WorkflowAnswer],
    cancelled: Callable[[], Awaitable[int]],
    *,
    renew: Callable[[], Awaitable[Any]],
    renew_every: float,
) -> WorkflowAnswer:
    """Await `work`, abandoning it with RunCancelled as soon as `cancelled()` says so; `renew()` the run's lease
    every `renew_every` seconds meanwhile."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    renew_at = loop.time() + renew_every
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=CANCEL_POLL_SECONDS)
            if done:
                return task.result()
            if await cancelled():
                raise RunCancelled
            if loop.time() >= renew_at:
                renew_at = loop.time() + renew_every
                try:
                    await renew()
                except RedisError as exc:  # the next renewal may get through before the lease lapses
                    logger.warning("could not renew a run's lease (%s)", exc.__class__.__name__)
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def _queue_save(settings: Settings, run: BackgroundRun, answer: WorkflowAnswer) -> str:
    """Save the turn the way the API saves its turns: registered, in the outbox, then one `save_turns` message.

    Then the turn joins the session's memory. Returns the id under which GET /task shows the save.
    """
    save_task_id = str(uuid.uuid4())
    turn = {
        **answered_turn(
            user_input=run.user_input,
            answer=answer.answer,
            session_id=run.session_id,
            turn_id=run.turn_id,
            owner=run.owner,
            model=answer.model,
        ),
        "task_id": save_task_id,
    }
    client = sync_redis(settings.redis_url)
    with client.pipeline(transaction=True) as pipe:
        pipe.set(
            issued_task_key(settings, save_task_id), issued_task_record("save", run.owner), ex=settings.result_expires
        )
        outbox.add_commands(pipe, settings, [turn])
        pipe.execute()
    try:
        # By name: the API imports this module (for cancel_key) and loads no task or database code.
        current_app.send_task(names.SAVE_TURNS, kwargs={"turns": [turn]})
    except Exception:
        # Not queued: the run fails, and the sweeper must not store the turn behind the client's back.
        with client.pipeline(transaction=True) as pipe:
            outbox.remove_commands(pipe, settings, [str(run.turn_id)])
            pipe.execute()
        raise
    memory.remember_turn(settings, turn)
    return save_task_id
