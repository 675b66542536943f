"""Celery wiring: the app factory, queues and routes, the Beat schedule."""
