"""Thin Celery tasks: take ids and primitives, call one service function, return small JSON."""
