"""Celery signal handlers for operations: logging, request ids and publish times in task headers, task metrics,
and the Prometheus exporter of each worker's main process.

Connected on import (the Celery factory imports this module), so the API, the workers and Beat all get them.
"""

from __future__ import annotations

import logging
import time
from contextvars import Token
from typing import Any

from celery import Task
from celery.signals import (
    before_task_publish,
    celeryd_init,
    setup_logging,
    task_failure,
    task_postrun,
    task_prerun,
    task_received,
    task_retry,
    task_revoked,
    task_success,
    worker_ready,
)

from convoflow.config import get_settings
from convoflow.dispatch.inspection import PUBLISHED_AT_HEADER
from convoflow.logging_setup import configure_logging
from convoflow.observability import metrics
from convoflow.observability.exposition import start_exporter
from convoflow.observability.multiprocess import active_directory
from convoflow.observability.request_id import (
    TASK_HEADER,
    bind_request_id,
    current_request_id,
    reset_request_id,
)

logger = logging.getLogger(__name__)

# Per pool process (or thread): what task_prerun started and task_postrun must finish.
_running: dict[str, tuple[Token[str | None], float]] = {}


@celeryd_init.connect
def _configure_logging_early(**_: Any) -> None:
    # The worker warns (e.g. about running as root) before it sets up logging: route warnings through ours.
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    logging.captureWarnings(True)


@setup_logging.connect
def _configure_worker_logging(loglevel: int | str | None = None, **_: Any) -> None:
    # Connecting here tells Celery to leave logging to us: workers and Beat log like the API.
    settings = get_settings()
    configure_logging(loglevel or settings.log_level, settings.log_format)


@before_task_publish.connect
def _stamp_headers(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is None:
        return
    # Seconds since the epoch: the age of a queue's oldest message comes from it.
    headers[PUBLISHED_AT_HEADER] = time.time()
    request_id = current_request_id()
    if request_id is not None:
        headers[TASK_HEADER] = request_id


@task_received.connect
@task_revoked.connect
def _arrival_logged(**_: Any) -> None:
    # The main process bound the message's request id for its "received" line (TracedRequest): unbind it.
    bind_request_id(None)


@task_prerun.connect
def _task_started(task_id: str | None = None, task: Task[Any, Any] | None = None, **_: Any) -> None:
    if task_id is None or task is None:
        return
    # A task run eagerly in the caller's process has no header and keeps the caller's id.
    request_id = task.request.get(TASK_HEADER)
    bound = request_id if isinstance(request_id, str) else current_request_id()
    _running[task_id] = (bind_request_id(bound), time.perf_counter())


@task_postrun.connect
def _task_finished(task_id: str | None = None, task: Task[Any, Any] | None = None, **_: Any) -> None:
    started = _running.pop(task_id, None) if task_id else None
    if started is None:
        return
    token, began = started
    if task is not None:
        metrics.task_duration.labels(task=task.name).observe(time.perf_counter() - began)
    reset_request_id(token)


@task_success.connect
def _count_success(sender: Task[Any, Any] | None = None, **_: Any) -> None:
    if sender is not None:
        metrics.tasks.labels(task=sender.name, outcome="success").inc()


@task_failure.connect
def _count_failure(sender: Task[Any, Any] | None = None, **_: Any) -> None:
    if sender is not None:
        metrics.tasks.labels(task=sender.name, outcome="failure").inc()


@task_retry.connect
def _count_retry(sender: Task[Any, Any] | None = None, **_: Any) -> None:
    if sender is not None:
        metrics.tasks.labels(task=sender.name, outcome="retry").inc()


@worker_ready.connect
def _start_metrics_exporter(**_: Any) -> None:
    settings = get_settings()
    if not settings.worker_metrics_port:
        return
    if active_directory() is None:
        logger.warning(
            "PROMETHEUS_MULTIPROC_DIR is not set: the exporter shows only the main process, not the pool's tasks; "
            "start workers with `celery -A celery_app worker`, which sets it"
        )
    start_exporter(settings.worker_metrics_port, settings.worker_metrics_address)
