"""Opaque page cursors of GET /sessions; no database code, so the API can check a cursor before sending a task."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime


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
