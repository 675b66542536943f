"""Read-your-writes: a turn /run answered shows in /history at once, marked persisted only once a worker stored it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import make_stack
from tests.utils.conversations import history, wait_until_persisted
from tests.utils.services import RedisTarget
from tests.utils.stack import Stack, api_alone


@pytest.fixture
def api_without_worker(sqlite_url: str, redis_target: RedisTarget, log_dir: Path) -> Iterator[Stack]:
    with api_alone(make_stack("ryw", redis_target, sqlite_url, log_dir, TASK_WAIT_TIMEOUT="2")) as stack:
        yield stack


def test_history_shows_turn_before_it_is_persisted_and_after(api_without_worker: Stack) -> None:
    stack = api_without_worker
    session = f"ryw-{uuid.uuid4()}"
    with stack.http() as client:
        first = client.post("/run", json={"user_input": "one", "session_id": session})
        second = client.post("/run", json={"user_input": "two", "session_id": session})
    assert first.status_code == second.status_code == 200
    assert "remember 1 earlier turn" in second.json()["answer"]

    page = history(stack, session_id=session)
    assert page["partial"] is True  # no worker answered: the listing comes from the cache alone
    assert [(item["turn_id"], item["persisted"], item["id"]) for item in page["history"]] == [
        (second.json()["turn_id"], False, None),
        (first.json()["turn_id"], False, None),
    ]
    assert page["history"][0]["ai_response"] == second.json()["answer"]

    stack.start_worker("-c", "1")
    stack.call("celery_tasks.init_database_task", timeout=60)
    stored = wait_until_persisted(stack, session, 2)
    assert [item["turn_id"] for item in stored] == [second.json()["turn_id"], first.json()["turn_id"]]
    assert all(isinstance(item["id"], int) for item in stored)
    assert history(stack, session_id=session)["partial"] is False


def test_with_no_worker_stored_turns_are_listed_from_the_cache_as_persisted(api_without_worker: Stack) -> None:
    stack = api_without_worker
    session = f"ryw-stored-{uuid.uuid4()}"
    worker = stack.start_worker("-c", "1")
    stack.call("celery_tasks.init_database_task", timeout=60)
    with stack.http() as client:
        answered = [client.post("/run", json={"user_input": text, "session_id": session}) for text in ("a", "b")]
    assert [response.status_code for response in answered] == [200, 200]
    wait_until_persisted(stack, session, 2)
    worker.stop()

    page = history(stack, session_id=session)
    assert page["partial"] is True  # the database's page is out of reach; the cache still knows both turns
    assert [(item["turn_id"], item["persisted"]) for item in page["history"]] == [
        (answered[1].json()["turn_id"], True),
        (answered[0].json()["turn_id"], True),
    ]


def test_history_of_a_session_nobody_cached_still_needs_a_worker(api_without_worker: Stack) -> None:
    with api_without_worker.http() as client:
        response = client.get("/history", params={"session_id": f"cold-{uuid.uuid4()}"})
    assert response.status_code == 504
    assert response.json()["error"] == "task_timeout"


def test_history_lists_each_turn_once_while_saves_land(sqlite_stack: Stack) -> None:
    session = f"ryw-once-{uuid.uuid4()}"
    answered: list[str] = []
    with sqlite_stack.http() as client:
        for index in range(6):
            answered.append(
                client.post("/run", json={"user_input": f"m{index}", "session_id": session}).json()["turn_id"]
            )
            listed = [item["turn_id"] for item in history(sqlite_stack, session_id=session)["history"]]
            assert listed == answered[::-1]  # every answered turn, newest first, none twice
    wait_until_persisted(sqlite_stack, session, 6)
