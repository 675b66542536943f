"""A session deleted while a batch of its saves is being stored stays deleted (real Redis and the three databases).

The delete records its time in Redis after the batch looked it up and runs its DELETE before the batch commits,
so it cannot see the batch's rows: the batch must notice afterwards and remove them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from convoflow.config import Settings
from convoflow.db.engine import forget_engines
from convoflow.db.migrate import upgrade_to_head
from convoflow.services import conversations
from convoflow.services.turn_batches import QueuedSave, save_batch
from tests.conftest import make_stack
from tests.utils.services import RedisTarget, create_database, drop_database, new_run_id, unavailable
from tests.utils.stack import Stack


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def stack(request: pytest.FixtureRequest, redis_target: RedisTarget, log_dir: Path) -> Iterator[Stack]:
    """Settings for a fresh database of each server and a private Redis namespace; no processes."""
    url = create_database(request.param, f"d{new_run_id()}")
    if url is None:
        unavailable(request.param)
        return
    upgrade_to_head(url)
    stack = make_stack(f"race-{request.param}", redis_target, url, log_dir)
    try:
        yield stack
    finally:
        stack.stop()
        forget_engines(url)
        drop_database(request.param, url)


def _save(session_id: str, answered: datetime) -> QueuedSave:
    turn_id = str(uuid.uuid4())
    kwargs: dict[str, Any] = {
        "user_input": "delete me",
        "ai_response": "gone soon",
        "session_id": session_id,
        "turn_id": turn_id,
        "timestamp": answered.isoformat(),
    }
    return QueuedSave(turn_id, (), kwargs)


def _stored(settings: Settings, session_id: str) -> list[dict[str, Any]]:
    return conversations.read_history(settings, limit=100, session_id=session_id)


def test_a_session_deleted_while_its_batch_is_being_stored_stays_deleted(stack: Stack) -> None:
    settings = stack.settings
    session_id = f"race-{uuid.uuid4()}"
    other = f"kept-{uuid.uuid4()}"
    before = datetime.now(UTC) - timedelta(seconds=1)
    saves = [_save(session_id, before), _save(other, before)]
    deleted: list[int] = []

    def delete_meanwhile(_session: Session) -> None:
        # Runs once, just before the batch commits, on connections of its own (the delete's own commit comes
        # back through this hook, hence the guard).
        if not deleted:
            deleted.append(-1)
            deleted[0] = conversations.delete_session(settings, session_id)

    event.listen(Session, "before_commit", delete_meanwhile)
    try:
        outcome = save_batch(settings, saves)
    finally:
        event.remove(Session, "before_commit", delete_meanwhile)

    assert deleted == [0]  # the delete ran inside the window and could not see the uncommitted row
    assert _stored(settings, session_id) == []
    assert outcome.stored[saves[0].task_id]["dropped"] == "its session was deleted"
    assert [turn["turn_id"] for turn in _stored(settings, other)] == [saves[1].task_id]
    assert "dropped" not in outcome.stored[saves[1].task_id]
