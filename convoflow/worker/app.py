"""The Celery factory: one app built from the settings, shared by the API, the workers and Beat."""

from __future__ import annotations

import logging
import sys
from functools import lru_cache
from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_process_init, worker_process_shutdown, worker_shutdown

from convoflow.config import Settings, get_settings
from convoflow.heap import freeze_startup_heap
from convoflow.logging_setup import install_privacy_filters
from convoflow.worker import telemetry  # noqa: F401  (connects the logging, request-id and metrics signals)
from convoflow.worker.broker_qos import use_expiring_messages_qos
from convoflow.worker.bulk_saves import BulkSaveConsumer
from convoflow.worker.events import LoopThreadTaskEvents
from convoflow.worker.outbox_sweeper import OutboxSweeper
from convoflow.worker.pool import configured_pool
from convoflow.worker.queues import DATABASE_QUEUE, TASK_MODULES, TASK_ROUTES, task_queues
from convoflow.worker.results import READ_RESULT_EXPIRES, use_result_backend
from convoflow.worker.schedule import beat_schedule

# Redelivery of an unacknowledged message after a worker dies. Saves are idempotent, so a short
# timeout costs at worst a harmless duplicate delivery and makes a killed worker's turns come back fast.
VISIBILITY_TIMEOUT_SECONDS = 30

logger = logging.getLogger(__name__)


def _transport_options(settings: Settings) -> dict[str, Any]:
    options: dict[str, Any] = {
        "visibility_timeout": VISIBILITY_TIMEOUT_SECONDS,
        # Look for abandoned messages every 5 s (kombu's default sweep is every 100 s).
        "unacked_restore_interval": 5,
        "unacked_restore_throttle": 1,
        # A worker killed during a sweep leaves the sweep's lock behind; make it expire quickly.
        "unacked_mutex_expire": 15,
        # A publish to a broker that vanished must fail, not hang (then the API answers 503).
        "socket_timeout": 5,
        "socket_connect_timeout": 3,
        "health_check_interval": 10,
    }
    if settings.redis_key_prefix:
        options["global_keyprefix"] = settings.redis_key_prefix
    if settings.broker_is_amqp:
        # A publish returns once RabbitMQ has the message (for a quorum queue: a majority of its nodes).
        options["confirm_publish"] = True
    return options


def celery_config(settings: Settings) -> dict[str, Any]:
    backend_options: dict[str, Any] = {}
    if settings.redis_key_prefix:
        backend_options["global_keyprefix"] = settings.redis_key_prefix
    pool = configured_pool(settings)
    tls: dict[str, Any] = {}
    # kombu connects to a rediss:// broker without checking its certificate unless told how: never silently.
    if settings.broker_url.startswith("rediss://"):
        tls["broker_use_ssl"] = settings.redis_tls_options
    if settings.result_backend_url.startswith("rediss://"):
        tls["redis_backend_use_ssl"] = settings.redis_tls_options
    return {
        **({"worker_pool": pool} if pool else {}),
        **tls,
        "broker_url": settings.broker_url,
        "result_backend": settings.result_backend_url,
        "broker_transport_options": _transport_options(settings),
        "result_backend_transport_options": backend_options,
        "broker_connection_retry_on_startup": True,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "timezone": "UTC",
        "enable_utc": True,
        "task_queues": task_queues(settings.broker_quorum_queues),
        "task_default_queue": DATABASE_QUEUE,
        "task_routes": TASK_ROUTES,
        "result_expires": settings.result_expires,
        READ_RESULT_EXPIRES: settings.read_result_expires,
        "task_track_started": True,
        "task_soft_time_limit": settings.task_soft_time_limit,
        "task_time_limit": settings.task_time_limit,
        # A message is acknowledged only after its task finished; a worker that dies gives it back.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # Cancelling running tasks on a broker connection loss makes Celery write their state to the result
        # backend, which is the same Redis that just went away: the worker then dies with an unrecoverable
        # error. Our tasks are idempotent, so letting them finish and be redelivered is the safe choice.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        # After a broker reconnect Celery would lower the prefetch count by the messages still held and raise it
        # as they are acknowledged; batched saves held across the reconnect are never acknowledged on the new
        # connection (the broker gives them back instead), so the count never recovered and the worker stalled.
        "worker_enable_prefetch_count_reduction": False,
        # Saves are stored in batches, so a worker must hold a batch's worth of unacknowledged messages.
        "worker_prefetch_multiplier": settings.worker_prefetch_multiplier,
        "task_publish_retry": True,
        "task_publish_retry_policy": {
            "max_retries": 3,
            "interval_start": 0.1,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
        "beat_schedule": beat_schedule(settings),
        # Beat records a heartbeat on every tick and ticks at least this often (see convoflow.worker.beat).
        "beat_scheduler": "convoflow.worker.beat:HeartbeatScheduler",
        "beat_max_loop_interval": settings.beat_heartbeat_interval_seconds,
        "worker_hijack_root_logger": False,
    }


def create_celery_app(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    app = Celery(
        "convoflow",
        include=list(TASK_MODULES),
        set_as_current=True,
        task_cls="convoflow.worker.requests:ConvoflowTask",
    )
    app.conf.update(celery_config(settings))
    use_result_backend(app)
    app.steps["worker"].add(OutboxSweeper)
    app.steps["worker"].add(BulkSaveConsumer)
    app.steps["consumer"].add(LoopThreadTaskEvents)
    # The default app, not just the current one: the current app is thread-local, and the API
    # publishes from a thread pool where `shared_task` proxies would otherwise fall back to amqp://localhost.
    app.set_default()
    install_privacy_filters()
    return app


@lru_cache(maxsize=1)
def get_celery_app() -> Celery:
    """The process-wide app (the worker's, or the API's producer)."""
    return create_celery_app()


@worker_init.connect
def _hold_expiring_messages_in_memory(**_: Any) -> None:
    # Sent before the worker's consumer opens its channel (see convoflow.worker.broker_qos).
    use_expiring_messages_qos()


@worker_init.connect
def _freeze_before_forking(**_: Any) -> None:
    # Sent once the task modules are loaded and before the pool forks: the children inherit the frozen heap.
    logger.info("%d startup objects frozen out of the garbage collector", freeze_startup_heap())


@worker_process_init.connect
def _fresh_connections_after_fork(**_: Any) -> None:
    # A forked pool child must not reuse its parent's database sockets. (Imported here: the API builds this app
    # too, to send tasks, and loads no database code.)
    from convoflow.db.engine import dispose_engines

    dispose_engines()
    frozen = freeze_startup_heap(collect=False)  # the parent's frozen heap plus what the child's start-up added
    logger.info("%d startup objects frozen out of the garbage collector (pool process)", frozen)


@worker_process_shutdown.connect
@worker_shutdown.connect
def _close_run_loops(**_: Any) -> None:
    # Background runs keep their loops, model providers and Redis clients between runs. Only a process that ran one
    # loaded that module (and the workflow with it): the others have nothing to close.
    run_loops = sys.modules.get("convoflow.services.run_loops")
    closed = run_loops.close_run_loops() if run_loops is not None else 0
    if closed:
        logger.info("closed %d background-run loop(s) and their model connections", closed)
