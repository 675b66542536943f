"""Turning a batch's outcome into Celery facts: results, retries, failures, and an ack decision per message."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from celery import Task
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError

from convoflow.config import Settings
from convoflow.services import outbox
from convoflow.services.dead_letters import record_dead_saves
from convoflow.services.redis_client import sync_redis
from convoflow.services.turn_batches import BatchOutcome
from convoflow.tasks.policy import save_retry_delay
from convoflow.worker.batching import ACK, REQUEUE
from convoflow.worker.results import store_successes

logger = logging.getLogger(__name__)


class SaveFailed(Exception):
    """A save that can never be stored (bad arguments, or data the database refuses)."""


class SaveRequest(Protocol):
    """What settle() needs of a save: celery-batches' SimpleRequest, or one turn of a batch message."""

    id: str
    args: Sequence[Any]
    kwargs: Mapping[str, Any]
    request_dict: Mapping[str, Any] | None


@dataclass
class TurnOfBatch:
    """One turn carried by a `convoflow.save_turns` message, shaped like a request of its own."""

    id: str
    kwargs: Mapping[str, Any]
    args: Sequence[Any] = ()
    request_dict: Mapping[str, Any] | None = field(default_factory=dict)


def _leave_outbox(settings: Settings, turn_ids: list[str]) -> None:
    if not turn_ids:
        return
    with sync_redis(settings.redis_url).pipeline(transaction=False) as pipe:
        outbox.remove_commands(pipe, settings, turn_ids)
        pipe.execute()


def _retries(request: SaveRequest) -> int:
    return int((request.request_dict or {}).get("retries") or 0)


def settle(
    task: Task[Any, Any], settings: Settings, requests: Sequence[SaveRequest], outcome: BatchOutcome
) -> dict[str, str]:
    """Record what happened to each save; returns "ack" only for saves that are stored, re-queued or failed for good."""
    decisions: dict[str, str] = {}
    by_id = {request.id: request for request in requests}
    try:
        store_successes(task.app, outcome.stored)
        _leave_outbox(settings, [str(result["turn_id"]) for result in outcome.stored.values()])
    except RedisError:
        # Stored, but the result could not be written: run them again (idempotent) so the result appears.
        logger.warning("could not record %d save results; they will be redone", len(outcome.stored))
        decisions.update(dict.fromkeys(outcome.stored, REQUEUE))
    else:
        decisions.update(dict.fromkeys(outcome.stored, ACK))

    exhausted: dict[str, str] = {}
    for task_id in outcome.transient:
        request = by_id[task_id]
        retries = _retries(request)
        if retries >= settings.save_max_retries:
            exhausted[task_id] = f"database unavailable after {retries} retries"
            continue
        decisions[task_id] = _retry_later(task, request, retries)

    failures = {**outcome.failed, **exhausted}
    if failures:
        decisions.update(_fail(task, settings, by_id, failures))
    return decisions


def _retry_later(task: Task[Any, Any], request: SaveRequest, retries: int) -> str:
    try:
        task.apply_async(
            args=tuple(request.args),
            kwargs=dict(request.kwargs),
            task_id=request.id,
            countdown=save_retry_delay(retries),
            retries=retries + 1,  # type: ignore[call-arg]  # a message option celery-types does not list
        )
        task.backend.mark_as_retry(request.id, SaveFailed("database unavailable; retrying"))
    except (BrokerError, RedisError, OSError):
        return REQUEUE
    return ACK


def _fail(
    task: Task[Any, Any], settings: Settings, by_id: Mapping[str, SaveRequest], failures: dict[str, str]
) -> dict[str, str]:
    entries = [
        {"task_id": task_id, "error": error, "args": list(by_id[task_id].args), "kwargs": dict(by_id[task_id].kwargs)}
        for task_id, error in failures.items()
    ]
    try:
        record_dead_saves(settings, entries)
        _leave_outbox(settings, [str(by_id[task_id].kwargs.get("turn_id") or task_id) for task_id in failures])
        for task_id, error in failures.items():
            task.backend.mark_as_failure(task_id, SaveFailed(error))
    except (RedisError, OSError):
        return dict.fromkeys(failures, REQUEUE)
    logger.error("%d saves failed for good and were kept as dead letters", len(failures))
    return dict.fromkeys(failures, ACK)
