"""An answered turn on its way to the database: the save task's keyword arguments, also cached in Redis."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

COMPLETE = "complete"
INTERRUPTED = "interrupted"


def answered_turn(
    *,
    user_input: str,
    answer: str,
    session_id: str,
    turn_id: uuid.UUID,
    owner: str | None,
    model: str | None,
    status: str = COMPLETE,
) -> dict[str, Any]:
    """The turn as `save_conversation_task` takes it, stamped now (turns are ordered by when they were answered)."""
    return {
        "user_input": user_input,
        "ai_response": answer,
        "session_id": session_id,
        "turn_id": str(turn_id),
        "timestamp": datetime.now(UTC).isoformat(),
        "owner": owner,
        "model": model,
        "status": status,
    }
