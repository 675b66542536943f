"""Session use cases: list sessions by last activity with an opaque cursor (delete goes through history)."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any

from convoflow.config import Settings
from convoflow.db import repository
from convoflow.services.database import read_only


def encode_cursor(last_activity: datetime, session_id: str) -> str:
    """An opaque page cursor: where the previous page ended, in URL-safe base64."""
    raw = json.dumps({"t": last_activity.isoformat(), "s": session_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """(last_activity, session_id) from a cursor; ValueError for anything this service did not issue."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        stamp = datetime.fromisoformat(data["t"])
        session_id = data["s"]
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError, KeyError) as exc:
        raise ValueError("not a cursor issued by GET /sessions") from exc
    if not isinstance(session_id, str) or not session_id:
        raise ValueError("not a cursor issued by GET /sessions")
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)), session_id


def list_sessions(
    settings: Settings, *, limit: int, cursor: str | None = None, owner: str | None = None
) -> dict[str, Any]:
    """One page of sessions, newest activity first, and the cursor of the next page (None on the last)."""
    before = decode_cursor(cursor) if cursor else None
    with read_only(settings) as session:
        # One row more than asked tells whether another page follows.
        rows = repository.list_sessions(session, limit=limit + 1, owner=owner, before=before)
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1].last_activity, page[-1].session_id) if len(rows) > limit else None
    return {
        "sessions": [
            {
                "session_id": row.session_id,
                "turn_count": row.turn_count,
                "first_activity": row.first_activity.isoformat(),
                "last_activity": row.last_activity.isoformat(),
            }
            for row in page
        ],
        "next_cursor": next_cursor,
    }
