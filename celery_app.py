"""Celery entry point: `celery -A celery_app worker|beat|flower`."""

from convoflow.worker.app import get_celery_app

app = get_celery_app()
celery = app

__all__ = ["app", "celery"]
