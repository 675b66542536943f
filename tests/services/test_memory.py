"""The workers' side of the session memory (a background run's model context) reads each turn once, like the API's."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from convoflow.config import Settings
from convoflow.db.repository import NewTurn
from convoflow.dispatch.recent import (
    incomplete_commands,
    incomplete_key,
    known_key,
    recall_cooldown_key,
    refill_call,
    run_refill,
)
from convoflow.services import conversations, memory
from convoflow.services.deleted_sessions import mark_deleted
from convoflow.services.redis_client import sync_redis
from tests.conftest import make_stack
from tests.utils.services import RedisTarget


@pytest.fixture
def settings(sqlite_url: str, redis_target: RedisTarget, log_dir: Path) -> Iterator[Settings]:
    """A private Redis namespace (no processes), emptied afterwards."""
    stack = make_stack("memory", redis_target, sqlite_url, log_dir)
    try:
        yield stack.settings
    finally:
        stack.stop()


def _answered(
    session: str, question: str, turn_id: uuid.UUID | None = None, at: datetime | None = None
) -> dict[str, Any]:
    """An answered turn as a run remembers it."""
    return {
        "turn_id": str(turn_id or uuid.uuid4()),
        "session_id": session,
        "user_input": question,
        "ai_response": f"echo: {question}",
        "timestamp": (at or datetime.now(UTC)).isoformat(),
    }


def test_a_turn_remembered_twice_is_read_once(settings: Settings) -> None:
    session = f"memory-{uuid.uuid4()}"
    first, second = (_answered(session, question) for question in ("first", "second"))
    memory.remember_turn(settings, first)
    memory.remember_turn(settings, second)
    memory.remember_turn(settings, second)  # a redelivered run remembers its turn again

    newest = memory.newest_turns(settings, None, session, 10)

    assert [turn["user_input"] for turn in newest] == ["second", "first"]


def test_a_refill_caches_no_turn_its_sessions_delete_covers(settings: Settings) -> None:
    """A session deleted while its memory was being read from the database keeps none of the deleted turns."""
    session = f"refill-{uuid.uuid4()}"
    deleted_at = datetime.now(UTC)
    stored = [
        {
            "turn_id": str(uuid.uuid4()),
            "session_id": session,
            "user_input": question,
            "ai_response": f"echo: {question}",
            "timestamp": (deleted_at + timedelta(seconds=offset)).isoformat(),
            "status": "complete",
        }
        for question, offset in (("after the delete", 1), ("before the delete", -1))
    ]
    mark_deleted(settings, None, session, deleted_at)
    keys, args = refill_call(settings, None, session, stored, keep=50, ttl_seconds=60)

    assert run_refill(sync_redis(settings.redis_url), keys, args) == 1
    assert [turn["user_input"] for turn in memory.newest_turns(settings, None, session, 10)] == ["after the delete"]


def _recalls() -> float:
    return sum(
        REGISTRY.get_sample_value("convoflow_memory_recalls_total", {"outcome": outcome}) or 0.0
        for outcome in ("recalled", "empty", "failed")
    )


def test_a_known_session_with_nothing_cached_is_recalled_unless_recalling_is_off(settings: Settings) -> None:
    session = f"known-{uuid.uuid4()}"
    sync_redis(settings.redis_url).set(known_key(settings, None, session), 1)

    before = _recalls()
    memory.newest_turns(settings.model_copy(update={"memory_recall_timeout": 0}), None, session, 10)
    assert _recalls() == before  # MEMORY_RECALL_TIMEOUT=0: the database is not asked
    memory.newest_turns(settings, None, session, 10)
    assert _recalls() == before + 1


def test_a_session_whose_read_back_failed_is_read_back_by_a_later_run_and_marked_whole(settings: Settings) -> None:
    session = f"incomplete-{uuid.uuid4()}"
    conversations.initialise_schema(settings)
    now = datetime.now(UTC)
    older = [
        NewTurn(uuid.uuid4(), session, f"stored {index}", "echo", now - timedelta(minutes=10 - index))
        for index in range(3)
    ]
    conversations.store_turns(settings, older)
    # Answered while the read back failed: cached (and stored), but not all the session has.
    since = NewTurn(uuid.uuid4(), session, "answered since", "echo", now)
    conversations.store_turns(settings, [since])
    memory.remember_turn(settings, _answered(session, since.user_input, since.turn_id, since.timestamp))
    client = sync_redis(settings.redis_url)
    assert [turn["user_input"] for turn in memory.newest_turns(settings, None, session, 10)] == ["answered since"]
    client.set(incomplete_key(settings, None, session), 1)

    expected = ["answered since", "stored 2", "stored 1", "stored 0"]
    assert [turn["user_input"] for turn in memory.newest_turns(settings, None, session, 10)] == expected
    assert not client.exists(incomplete_key(settings, None, session))
    # Cached behind the turn answered since, each once: the next run reads no database.
    before = _recalls()
    assert [turn["user_input"] for turn in memory.newest_turns(settings, None, session, 10)] == expected
    assert _recalls() == before


def test_after_a_failed_read_back_a_run_does_not_try_again_until_the_cooldown_ends(settings: Settings) -> None:
    session = f"cooldown-{uuid.uuid4()}"
    conversations.initialise_schema(settings)
    memory.remember_turn(settings, _answered(session, "answered alone"))
    client = sync_redis(settings.redis_url)
    with client.pipeline() as pipe:  # what a failed read back leaves (MEMORY_RECALL_RETRY_SECONDS: 30)
        incomplete_commands(pipe, settings, None, session, 60)
        pipe.execute()
    assert 0 < client.pttl(recall_cooldown_key(settings, None, session)) <= 30_000

    before = _recalls()
    memory.newest_turns(settings, None, session, 10)
    assert _recalls() == before  # cooling down: the database is not asked
    client.delete(recall_cooldown_key(settings, None, session))
    memory.newest_turns(settings, None, session, 10)
    assert _recalls() == before + 1
    assert not client.exists(incomplete_key(settings, None, session))
