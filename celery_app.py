"""Celery entry point: `celery -A celery_app worker|beat|flower`."""

from convoflow.config import get_settings
from convoflow.observability.multiprocess import use_private_directory

if get_settings().worker_metrics_port:
    # Before anything imports prometheus_client: pool processes inherit the directory, the exporter reads it.
    use_private_directory(get_settings(), "worker")

from convoflow.worker.app import get_celery_app

app = get_celery_app()
celery = app

__all__ = ["app", "celery"]
