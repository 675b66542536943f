"""Readiness: can this API reach Redis and the broker, is a worker listening, can it reach the database."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass

from convoflow.dispatch.gateway import TaskGateway
from convoflow.tasks.health import check_database_task

CHECK_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str


async def _guard(name: str, probe: Awaitable[str]) -> tuple[str, Check]:
    try:
        return name, Check(True, await asyncio.wait_for(probe, CHECK_TIMEOUT_SECONDS))
    except Exception as exc:  # a failing dependency is a finding here, not an error
        message = getattr(exc, "message", None) or str(exc) or exc.__class__.__name__
        return name, Check(False, message)


async def check_all(gateway: TaskGateway) -> dict[str, Check]:
    """Run every check at once; each names what failed."""

    async def redis_state() -> str:
        await gateway.redis.ping()
        return f"Redis at {gateway.settings.redis_address} answers"

    async def broker() -> str:
        await gateway.ping_broker()
        return "broker answers"

    async def workers() -> str:
        names = await gateway.ping_workers(timeout=1.0)
        if not names:
            raise RuntimeError("no Celery worker answered a ping")
        return f"{len(names)} worker(s): {', '.join(names)}"

    async def database() -> str:
        await gateway.call(check_database_task, {}, kind="health", timeout=CHECK_TIMEOUT_SECONDS - 0.5)
        return "a worker reached the database"

    results = await asyncio.gather(
        _guard("redis", redis_state()),
        _guard("broker", broker()),
        _guard("workers", workers()),
        _guard("database", database()),
    )
    return dict(results)
