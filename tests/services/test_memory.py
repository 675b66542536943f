"""The workers' side of the session memory (a background run's model context) reads each turn once, like the API's."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from convoflow.config import Settings
from convoflow.services import memory
from tests.utils.services import RedisTarget, delete_prefixed_keys


@pytest.fixture
def settings(redis_target: RedisTarget) -> Iterator[Settings]:
    prefix = f"cftest-memory-{uuid.uuid4().hex[:8]}:"
    yield Settings(  # type: ignore[call-arg]
        _env_file=None,
        redis_host=redis_target.host,
        redis_port=redis_target.port,
        redis_password=redis_target.password,
        redis_key_prefix=prefix,
    )
    delete_prefixed_keys(redis_target.host, redis_target.port, prefix, redis_target.password)


def test_a_turn_remembered_twice_is_read_once(settings: Settings) -> None:
    session = f"memory-{uuid.uuid4()}"
    first, second = (
        {
            "turn_id": str(uuid.uuid4()),
            "session_id": session,
            "user_input": question,
            "ai_response": f"echo: {question}",
            "timestamp": datetime.now(UTC).isoformat(),
        }
        for question in ("first", "second")
    )
    memory.remember_turn(settings, first)
    memory.remember_turn(settings, second)
    memory.remember_turn(settings, second)  # a redelivered run remembers its turn again

    newest = memory.newest_turns(settings, None, session, 10)

    assert [turn["user_input"] for turn in newest] == ["second", "first"]
