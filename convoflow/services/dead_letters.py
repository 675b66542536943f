"""Saves that can never be stored are kept, whole, in a Redis list for an operator to inspect or replay."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from convoflow.config import Settings
from convoflow.services.redis_client import sync_redis


def dead_letter_key(settings: Settings) -> str:
    return settings.redis_key("dead-letters", "saves")


def record_dead_saves(settings: Settings, entries: Iterable[dict[str, Any]]) -> int:
    """Append failed saves (task id, error, original arguments); returns how many were kept."""
    payloads = [json.dumps({**entry, "failed_at": datetime.now(UTC).isoformat()}) for entry in entries]
    if not payloads:
        return 0
    sync_redis(settings.redis_url).rpush(dead_letter_key(settings), *payloads)
    return len(payloads)
