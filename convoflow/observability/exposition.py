"""Prometheus text for /metrics and the workers' exporter, aggregated over processes in multi-process mode."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, start_http_server
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from convoflow.observability.multiprocess import active_directory

logger = logging.getLogger(__name__)

# What generate_latest writes; every Prometheus version reads it.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


def process_group_registry() -> CollectorRegistry:
    """Every process's metrics when a multi-process directory is in use, else this process's."""
    directory = active_directory()
    if directory is None:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return registry


def render(extra: Iterable[Collector] = ()) -> bytes:
    """The exposition text of the process group's metrics followed by `extra` collectors (read at scrape time)."""
    text = generate_latest(process_group_registry())
    scraped = CollectorRegistry(auto_describe=False)
    for collector in extra:
        scraped.register(collector)
    return text + generate_latest(scraped)


def start_exporter(port: int, address: str) -> bool:
    """Serve the process group's metrics on http://address:port/metrics in a daemon thread; False if it cannot."""
    try:
        start_http_server(port, addr=address, registry=process_group_registry())
    except OSError as exc:
        logger.warning("worker metrics exporter not started on %s:%d: %s", address, port, exc)
        return False
    logger.info(
        "worker metrics exporter on http://%s:%d/metrics (%s)",
        address,
        port,
        "multi-process" if active_directory() else "this process only",
    )
    return True
