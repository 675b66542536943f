"""A session whose memory Redis no longer holds (it expires a day after the session's last turn) is remembered from
the database: through a worker for /run and /run/stream, directly for a background run; and cached again. Only a
session known to have had turns is looked up: a new one costs no read."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from convoflow.dispatch.recent import decode_newest, incomplete_key, known_key, recent_key
from convoflow.tasks import names
from tests.conftest import make_stack
from tests.utils.auth import bearer
from tests.utils.conversations import sse_events, wait_for_state, wait_until_persisted
from tests.utils.services import RedisTarget
from tests.utils.stack import Stack, api_alone


def _turn(stack: Stack, session: str, text: str, headers: dict[str, str] | None = None) -> dict[str, str]:
    with stack.http() as client:
        response = client.post("/run", json={"user_input": text, "session_id": session}, headers=headers or {})
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.json()
    return body


def _stored_then_forgotten(stack: Stack, session: str, count: int, headers: dict[str, str] | None = None) -> list[str]:
    """`count` turns answered and stored, then the session's list gone from Redis, as when it expires."""
    turn_ids = [_turn(stack, session, f"turn {index}", headers)["turn_id"] for index in range(count)]
    wait_until_persisted(stack, session, count, headers=headers)
    owner = "alice" if headers else None
    with redis.Redis.from_url(stack.settings.redis_url) as client:
        assert client.delete(recent_key(stack.settings, owner, session)) == 1
    return turn_ids


def _cached_ids(stack: Stack, session: str, owner: str | None = None) -> list[str]:
    with redis.Redis.from_url(stack.settings.redis_url) as client:
        raw = client.lrange(recent_key(stack.settings, owner, session), 0, -1)
    return [turn["turn_id"] for turn in decode_newest(list(raw))]


def test_run_remembers_a_session_from_the_database_and_caches_it_again(stack: Stack) -> None:
    session = f"recall-{uuid.uuid4()}"
    earlier = _stored_then_forgotten(stack, session, 3)

    resumed = _turn(stack, session, "still there?")
    assert "I remember 3 earlier turns" in resumed["answer"]
    # Cached again behind the new turn, newest first: the next turn needs no database read.
    assert _cached_ids(stack, session) == [resumed["turn_id"], *reversed(earlier)]
    assert "I remember 4 earlier turns" in _turn(stack, session, "and now?")["answer"]


def test_a_stream_remembers_a_session_from_the_database(stack: Stack) -> None:
    session = f"recall-stream-{uuid.uuid4()}"
    _stored_then_forgotten(stack, session, 2)
    with (
        stack.http() as client,
        client.stream("POST", "/run/stream", json={"user_input": "streamed", "session_id": session}) as response,
    ):
        [done] = [data for event, data in sse_events(response) if event == "done"]
    assert "I remember 2 earlier turns" in done["answer"]


def test_a_background_run_remembers_a_session_from_the_database(stack: Stack) -> None:
    session = f"recall-run-{uuid.uuid4()}"
    earlier = _stored_then_forgotten(stack, session, 2)
    with stack.http() as client:
        queued = client.post("/runs", json={"user_input": "in the background", "session_id": session}).json()
    result = wait_for_state(stack, queued["task_id"], "succeeded", timeout=60)["result"]
    assert "I remember 2 earlier turns" in result["answer"]
    assert _cached_ids(stack, session) == [queued["turn_id"], *reversed(earlier)]


def test_a_keys_session_is_recalled_from_its_own_turns_only(keyed_stack: Stack) -> None:
    session = f"recall-owned-{uuid.uuid4()}"
    _stored_then_forgotten(keyed_stack, session, 2, headers=bearer("alice"))
    assert "I remember 0 earlier turns" in _turn(keyed_stack, session, "bob's first", bearer("bob"))["answer"]
    assert "I remember 2 earlier turns" in _turn(keyed_stack, session, "alice again", bearer("alice"))["answer"]


@pytest.fixture(scope="module")
def workerless_api(sqlite_url: str, redis_target: RedisTarget, log_dir: Path) -> Iterator[Stack]:
    """An API whose database tasks no worker takes: a recall can only time out."""
    with api_alone(
        make_stack("recall-no-worker", redis_target, sqlite_url, log_dir, MEMORY_RECALL_TIMEOUT="0.5")
    ) as stack:
        yield stack


def _queued_tasks(stack: Stack) -> list[str]:
    with redis.Redis.from_url(stack.settings.redis_url) as client:
        return [json.loads(raw)["headers"]["task"] for raw in client.lrange(f"{stack.prefix}database", 0, -1)]


def test_a_new_session_is_not_looked_up_in_the_database(workerless_api: Stack) -> None:
    before = len(_queued_tasks(workerless_api))
    answer = _turn(workerless_api, f"recall-new-{uuid.uuid4()}", "hello")
    assert "I remember 0 earlier turns" in answer["answer"]
    after = _queued_tasks(workerless_api)
    queued = after[: len(after) - before]  # pushed at the head: the newest messages come first
    assert queued and names.GET_HISTORY not in queued


def test_without_a_worker_a_known_session_is_answered_without_its_memory(workerless_api: Stack) -> None:
    session = f"recall-alone-{uuid.uuid4()}"
    with redis.Redis.from_url(workerless_api.settings.redis_url) as client:
        client.set(known_key(workerless_api.settings, None, session), 1)  # turns answered more than a day ago
    answer = _turn(workerless_api, session, "anyone?")
    assert "I remember 0 earlier turns" in answer["answer"]
    assert "session memory not read from the database (TaskTimedOut)" in workerless_api.processes[0].log()


def test_after_a_failed_recall_the_sessions_next_turns_do_not_wait_for_the_database_again(
    workerless_api: Stack,
) -> None:
    session = f"recall-cooldown-{uuid.uuid4()}"
    with redis.Redis.from_url(workerless_api.settings.redis_url) as client:
        client.set(known_key(workerless_api.settings, None, session), 1)
    before = _queued_tasks(workerless_api).count(names.GET_HISTORY)
    assert "I remember 0 earlier turns" in _turn(workerless_api, session, "anyone?")["answer"]
    assert _queued_tasks(workerless_api).count(names.GET_HISTORY) == before + 1
    # Within MEMORY_RECALL_RETRY_SECONDS (30 s) of the failure: answered from the turns cached since, no read queued.
    assert "I remember 1 earlier turns" in _turn(workerless_api, session, "still nobody?")["answer"]
    assert _queued_tasks(workerless_api).count(names.GET_HISTORY) == before + 1


def test_a_deleted_session_is_no_longer_known(stack: Stack) -> None:
    session = f"recall-deleted-{uuid.uuid4()}"
    _stored_then_forgotten(stack, session, 1)
    with redis.Redis.from_url(stack.settings.redis_url) as client:
        assert client.exists(known_key(stack.settings, None, session))
        with stack.http() as http:
            assert http.delete("/history", params={"session_id": session}).json()["deleted"] == 1
        assert not client.exists(known_key(stack.settings, None, session))


def test_a_session_answered_without_its_memory_is_remembered_whole_once_a_worker_answers(
    sqlite_url: str, redis_target: RedisTarget, log_dir: Path
) -> None:
    stack = make_stack(
        "recall-heal", redis_target, sqlite_url, log_dir, MEMORY_RECALL_TIMEOUT="1", MEMORY_RECALL_RETRY_SECONDS="0"
    )
    session = f"recall-heal-{uuid.uuid4()}"
    try:
        worker = stack.start_worker("-c", "2")
        stack.call(names.INIT_DATABASE, timeout=60)
        stack.start_api()
        earlier = _stored_then_forgotten(stack, session, 3)
        worker.stop()  # nobody reads the session back: its next turn is answered without memory
        alone = _turn(stack, session, "anyone?")
        assert "I remember 0 earlier turns" in alone["answer"]
        with redis.Redis.from_url(stack.settings.redis_url) as client:
            assert client.exists(incomplete_key(stack.settings, None, session))
        stack.start_worker("-c", "2", name="worker-back")
        # Cached is only the turn answered alone; the session's stored turns are read back behind it.
        healed = _turn(stack, session, "and now?")
        assert "I remember 4 earlier turns" in healed["answer"]
        cached = _cached_ids(stack, session)
        with redis.Redis.from_url(stack.settings.redis_url) as client:
            marked = client.exists(incomplete_key(stack.settings, None, session))
    finally:
        stack.stop()
    assert cached == [healed["turn_id"], alone["turn_id"], *reversed(earlier)]
    assert not marked
