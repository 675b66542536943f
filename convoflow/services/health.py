"""Readiness: Redis, the broker, workers per queue, the database (through a task), queue backlog, Beat's
heartbeat and the persistence lag. Each check names what failed; thresholds come from the settings."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from convoflow.config import Settings
from convoflow.dispatch import inspection
from convoflow.dispatch.gateway import TaskGateway
from convoflow.observability.heartbeat import heartbeat_age
from convoflow.services import pending
from convoflow.services.redis_memory import NO_EVICTION, RedisMemory, read_memory
from convoflow.tasks import names
from convoflow.worker.queues import DATABASE_QUEUE

CHECK_TIMEOUT_SECONDS = 3.0
INSPECT_TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


async def _guard(name: str, probe: Awaitable[Check], timeout: float = CHECK_TIMEOUT_SECONDS) -> tuple[str, Check]:
    try:
        return name, await asyncio.wait_for(probe, timeout)
    except TimeoutError:
        return name, Check(False, f"no answer within {timeout:g}s")
    except Exception as exc:  # a failing dependency is a finding here, not an error
        message = getattr(exc, "message", None) or str(exc) or exc.__class__.__name__
        return name, Check(False, message)


def _seconds(value: float) -> str:
    return f"{value:.1f}s"


def judge_workers(expected: list[str], consumers: dict[str, list[str]]) -> Check:
    idle = [queue for queue in expected if not consumers.get(queue)]
    data = {queue: consumers.get(queue, []) for queue in sorted({*expected, *consumers})}
    if not consumers:
        return Check(False, "no Celery worker answered (none consumes " + ", ".join(idle) + ")", data)
    if idle:
        return Check(False, "no Celery worker consumes queue(s): " + ", ".join(idle), data)
    described = "; ".join(f"{queue}: {len(names)} ({', '.join(names)})" for queue, names in data.items())
    return Check(True, described, data)


def judge_queues(settings: Settings, states: list[inspection.QueueState]) -> Check:
    problems: list[str] = []
    described: list[str] = []
    data: dict[str, Any] = {}
    for state in states:
        age = state.oldest_age_seconds
        data[state.name] = {"depth": state.depth, "oldest_age_seconds": age, "age_known": state.age_known}
        if not state.age_known:
            age_text = "age unknown on this broker"
        else:
            age_text = f"oldest {_seconds(age)}" if age is not None else "empty"
        described.append(f"{state.name}: {state.depth} waiting, {age_text}")
        if settings.health_max_queue_depth and state.depth > settings.health_max_queue_depth:
            problems.append(f"{state.name}: {state.depth} waiting (limit {settings.health_max_queue_depth})")
        if settings.health_max_queue_age_seconds and age is not None and age > settings.health_max_queue_age_seconds:
            limit = _seconds(settings.health_max_queue_age_seconds)
            problems.append(f"{state.name}: oldest message waited {_seconds(age)} (limit {limit})")
    if problems:
        return Check(False, "; ".join(problems), data)
    return Check(True, "; ".join(described), data)


def _mb(value: int) -> str:
    return f"{value / 2**20:.1f} MB"


def judge_redis(settings: Settings, memory: RedisMemory) -> Check:
    data = {
        "used_memory_bytes": memory.used_bytes,
        "maxmemory_bytes": memory.max_bytes,
        "maxmemory_policy": memory.policy,
        "used_percent": memory.used_percent,
        "aof_enabled": memory.aof,
    }
    used = f"{_mb(memory.used_bytes)} used"
    if memory.max_bytes:
        used += f" of {_mb(memory.max_bytes)} ({memory.used_percent:.0f}%)"
    if memory.evicts:
        return Check(
            False,
            f"Redis evicts keys when full (maxmemory-policy {memory.policy}): queued saves and turns not stored yet "
            f"could be dropped; set maxmemory-policy {NO_EVICTION}",
            data,
        )
    limit = settings.health_max_redis_memory_percent
    if limit and memory.used_percent is not None and memory.used_percent > limit:
        return Check(False, f"Redis is nearly full: {used} (limit {limit:g}%); writes fail when it is", data)
    described = f"Redis at {settings.redis_address} answers; {used}"
    if memory.aof is False:
        described += "; AOF off: a Redis restart loses what is queued"
    return Check(True, described, data)


def judge_beat(settings: Settings, age: float | None) -> Check:
    limit = settings.health_beat_max_age_seconds
    data = {"last_tick_age_seconds": age, "required": bool(limit)}
    seen = f"last tick {_seconds(age)} ago" if age is not None else "no tick recorded"
    if not limit:
        return Check(True, f"not required (HEALTH_BEAT_MAX_AGE_SECONDS=0); {seen}", data)
    if age is None:
        return Check(False, "Beat has not recorded a heartbeat: is `celery -A celery_app beat` running?", data)
    if age > limit:
        return Check(False, f"Beat's last tick was {_seconds(age)} ago (limit {_seconds(limit)})", data)
    return Check(True, seen, data)


def judge_persistence(settings: Settings, lag: pending.PersistenceLag) -> Check:
    age = lag.oldest_age_seconds
    data = {"pending_turns": lag.pending, "oldest_age_seconds": age}
    if age is None:
        return Check(True, "every answered turn is stored", data)
    described = f"{lag.pending} answered turn(s) not stored yet, the oldest answered {_seconds(age)} ago"
    limit = settings.health_max_persistence_lag_seconds
    if limit and age > limit:
        return Check(False, f"{described} (limit {_seconds(limit)})", data)
    return Check(True, described, data)


async def check_all(gateway: TaskGateway) -> dict[str, Check]:
    """Run every check at once; each names what failed."""
    settings = gateway.settings
    expected = inspection.expected_queues(gateway.app)
    consumers = asyncio.ensure_future(inspection.consumers_by_queue(gateway.app, INSPECT_TIMEOUT_SECONDS))

    async def redis_state() -> Check:
        return judge_redis(settings, await read_memory(gateway.redis))

    async def broker() -> Check:
        await gateway.ping_broker()
        return Check(True, "broker answers")

    async def workers() -> Check:
        return judge_workers(expected, await asyncio.shield(consumers))

    async def database() -> Check:
        if not (await asyncio.shield(consumers)).get(DATABASE_QUEUE):
            # Nothing would answer: do not pile check messages onto an unconsumed queue.
            return Check(False, f"not checked: no worker consumes the '{DATABASE_QUEUE}' queue")
        await gateway.call(names.CHECK_DATABASE, {}, kind="health", timeout=CHECK_TIMEOUT_SECONDS - 0.5)
        return Check(True, "a worker reached the database")

    async def queues() -> Check:
        return judge_queues(settings, await inspection.queue_states(gateway.app, expected))

    async def beat() -> Check:
        return judge_beat(settings, await heartbeat_age(gateway.redis, settings))

    async def persistence() -> Check:
        return judge_persistence(settings, await pending.persistence_lag(gateway.redis, settings))

    try:
        results = await asyncio.gather(
            _guard("redis", redis_state()),
            _guard("broker", broker()),
            _guard("workers", workers()),
            _guard("database", database(), CHECK_TIMEOUT_SECONDS + INSPECT_TIMEOUT_SECONDS),
            _guard("queues", queues()),
            _guard("beat", beat()),
            _guard("persistence", persistence()),
        )
    finally:
        consumers.cancel()
    return dict(results)
