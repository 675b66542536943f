"""A deleted session stays deleted: a turn answered before the delete but saved after it is dropped."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from convoflow.services import outbox
from tests.conftest import make_stack
from tests.utils.conversations import leave_in_outbox, wait_until_persisted
from tests.utils.processes import wait_until
from tests.utils.services import RedisTarget
from tests.utils.stack import Stack, running


@pytest.fixture(scope="module")
def swept_stack(sqlite_url: str, redis_target: RedisTarget, log_dir: Path) -> Iterator[Stack]:
    """A stack whose outbox sends unsaved turns again after 5 s, looking twice a second."""
    stack = make_stack("deleted-sessions", redis_target, sqlite_url, log_dir)
    stack.extra_env.update(OUTBOX_REDELIVER_AFTER="5", OUTBOX_SWEEP_INTERVAL="0.5")
    with running(stack) as live:
        yield live


def test_a_turn_saved_after_its_session_was_deleted_is_dropped(swept_stack: Stack) -> None:
    session = f"deleted-{uuid.uuid4()}"
    with swept_stack.http() as client:
        assert client.post("/run", json={"user_input": "stored first", "session_id": session}).status_code == 200
        wait_until_persisted(swept_stack, session, 1)
        # A turn answered now whose save is still on its way: only the outbox holds it.
        late = leave_in_outbox(swept_stack, session, "before the delete")

        deleted = client.delete(f"/sessions/{session}")
        assert deleted.status_code == 200, deleted.text
        assert deleted.json()["deleted"] == 1

        # The sweeper sends the late turn after 5 s; the worker settles it without storing it.
        redis_client = redis.Redis.from_url(swept_stack.settings.redis_url)
        try:
            wait_until(
                lambda: redis_client.hget(outbox.turns_key(swept_stack.settings), late["turn_id"]) is None,
                60,
                interval=0.5,
                what="the late turn to leave the outbox",
            )
        finally:
            redis_client.close()
        assert swept_stack.stored_turns(session) == []

        # The client carries on in the same session: new turns are stored as usual.
        again = client.post("/run", json={"user_input": "after the delete", "session_id": session})
        assert again.status_code == 200
        [turn] = wait_until_persisted(swept_stack, session, 1)
    assert turn["turn_id"] == again.json()["turn_id"]
