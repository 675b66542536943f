"""The record of every task id this service issued (so GET /task can tell a real id from a guess)."""

from __future__ import annotations

import json

from convoflow.config import Settings


def issued_task_key(settings: Settings, task_id: str) -> str:
    return settings.redis_key("task", task_id)


def issued_task_record(kind: str, owner: str | None) -> str:
    """What is remembered of an issued task: its kind (save, run, history, ...) and who asked for it."""
    return json.dumps({"kind": kind, "owner": owner})
