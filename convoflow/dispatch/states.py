"""Celery's task states in the words the API uses for them."""

from __future__ import annotations

from celery import states

FRIENDLY_STATES: dict[str, str] = {
    states.PENDING: "queued",
    states.RECEIVED: "queued",
    states.STARTED: "started",
    states.RETRY: "retrying",
    states.SUCCESS: "succeeded",
    states.FAILURE: "failed",
    states.REVOKED: "cancelled",
}


def friendly_state(celery_state: str) -> str:
    """queued, started, retrying, succeeded, failed or cancelled (an unknown state in lower case)."""
    return FRIENDLY_STATES.get(celery_state, celery_state.lower())
