"""Session use cases: list sessions by last activity with an opaque cursor (delete goes through history)."""

from __future__ import annotations

from typing import Any

from convoflow.config import Settings
from convoflow.db import repository
from convoflow.services.cursors import decode_cursor, encode_cursor
from convoflow.services.database import read


def list_sessions(
    settings: Settings, *, limit: int, cursor: str | None = None, owner: str | None = None
) -> dict[str, Any]:
    """One page of sessions, newest activity first, and the cursor of the next page (None on the last)."""
    before = decode_cursor(cursor) if cursor else None
    # One row more than asked tells whether another page follows.
    rows = read(
        settings, lambda session: repository.list_sessions(session, limit=limit + 1, owner=owner, before=before)
    )
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
