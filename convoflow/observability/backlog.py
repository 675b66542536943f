"""Gauges read when /metrics is scraped: queue depth and age, turns waiting to be stored, Beat's heartbeat age,
Redis's memory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from convoflow.dispatch import inspection
from convoflow.dispatch.gateway import TaskGateway
from convoflow.observability.heartbeat import heartbeat_age
from convoflow.services import pending
from convoflow.services.redis_memory import read_memory

logger = logging.getLogger(__name__)

READ_TIMEOUT_SECONDS = 3.0


class Snapshot(Collector):
    """Metric families read once, served as they are."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


async def read_backlog(gateway: TaskGateway) -> Snapshot:
    """Read the broker and Redis now; a part that cannot be read is left out and its dependency marked down."""
    settings = gateway.settings
    queues, lag, beat_age, memory = await asyncio.gather(
        asyncio.wait_for(
            inspection.queue_states(gateway.app, inspection.expected_queues(gateway.app)), READ_TIMEOUT_SECONDS
        ),
        asyncio.wait_for(pending.persistence_lag(gateway.redis, settings), READ_TIMEOUT_SECONDS),
        asyncio.wait_for(heartbeat_age(gateway.redis, settings), READ_TIMEOUT_SECONDS),
        asyncio.wait_for(read_memory(gateway.redis), READ_TIMEOUT_SECONDS),
        return_exceptions=True,
    )
    up = GaugeMetricFamily(
        "convoflow_dependency_up", "1 when /metrics could read the dependency, else 0.", labels=["dependency"]
    )
    up.add_metric(["broker"], 0.0 if isinstance(queues, BaseException) else 1.0)
    up.add_metric(["redis"], 0.0 if isinstance(lag, BaseException) else 1.0)
    families: list[Metric] = [up]
    if isinstance(queues, BaseException):
        logger.debug("queue depth not readable: %s", queues.__class__.__name__)
    else:
        depth = GaugeMetricFamily("convoflow_queue_depth", "Messages waiting in the queue.", labels=["queue"])
        age = GaugeMetricFamily(
            "convoflow_queue_oldest_message_age_seconds",
            "How long the queue's oldest message has waited (0 when empty; absent when the broker cannot tell).",
            labels=["queue"],
        )
        for state in queues:
            depth.add_metric([state.name], float(state.depth))
            if state.age_known:
                age.add_metric([state.name], state.oldest_age_seconds or 0.0)
        families += [depth, age]
    if not isinstance(lag, BaseException):
        families.append(GaugeMetricFamily("convoflow_pending_turns", "Answered turns not stored yet.", lag.pending))
        families.append(
            GaugeMetricFamily(
                "convoflow_persistence_lag_seconds",
                "Age of the oldest answered turn not stored yet (0 when every turn is stored).",
                lag.oldest_age_seconds or 0.0,
            )
        )
    if not isinstance(beat_age, BaseException) and beat_age is not None:
        families.append(
            GaugeMetricFamily("convoflow_beat_heartbeat_age_seconds", "Seconds since Beat's last tick.", beat_age)
        )
    if not isinstance(memory, BaseException):
        families.append(
            GaugeMetricFamily(
                "convoflow_redis_used_memory_bytes", "Memory Redis uses (INFO used_memory).", memory.used_bytes
            )
        )
        families.append(
            GaugeMetricFamily("convoflow_redis_maxmemory_bytes", "Redis's maxmemory (0: no limit).", memory.max_bytes)
        )
    return Snapshot(families)
