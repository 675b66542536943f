"""POST /run, GET/DELETE /history and GET /task through the real API process, on each database."""

from __future__ import annotations

import json
import uuid
from typing import Any

import redis

from tests.utils.conversations import wait_for_state
from tests.utils.stack import Stack


def test_run_answers_and_its_turn_reaches_history(stack: Stack) -> None:
    session = f"run-{uuid.uuid4()}"
    with stack.http() as client:
        response = client.post("/run", json={"user_input": "Hello", "session_id": session})
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"answer", "session_id", "turn_id", "task_id"}
        assert body["session_id"] == session
        assert "offline" in body["answer"]
        wait_for_state(stack, body["task_id"], "succeeded", timeout=30)
        history = client.get("/history", params={"session_id": session}).json()
    assert history["count"] == 1
    [item] = history["history"]
    assert item["turn_id"] == body["turn_id"]
    assert (item["user_input"], item["ai_response"]) == ("Hello", body["answer"])
    assert set(item) >= {"id", "turn_id", "session_id", "user_input", "ai_response", "timestamp"}


def test_run_without_session_id_gets_a_new_uuid_session(stack: Stack) -> None:
    with stack.http() as client:
        body = client.post("/run", json={"user_input": "Hi"}).json()
    assert uuid.UUID(body["session_id"])


def test_the_model_remembers_earlier_turns_of_the_same_session_only(stack: Stack) -> None:
    session = f"mem-{uuid.uuid4()}"
    with stack.http() as client:
        client.post("/run", json={"user_input": "one", "session_id": session})
        second = client.post("/run", json={"user_input": "two", "session_id": session}).json()
        stranger = client.post("/run", json={"user_input": "three", "session_id": f"x-{uuid.uuid4()}"}).json()
    assert "remember 1 earlier turn" in second["answer"]
    assert "remember 0 earlier turns" in stranger["answer"]


def test_task_endpoint_reports_the_save_result(stack: Stack) -> None:
    with stack.http() as client:
        body = client.post("/run", json={"user_input": "status please", "session_id": "task-status"}).json()
    status = wait_for_state(stack, body["task_id"], "succeeded", timeout=30)
    assert (status["task_id"], status["status"]) == (body["task_id"], "SUCCESS")
    assert isinstance(status["result"], dict)
    assert status["result"]["turn_id"] == body["turn_id"]
    assert status["error"] is None


def test_task_endpoint_answers_404_for_ids_it_never_issued(stack: Stack) -> None:
    with stack.http() as client:
        response = client.get(f"/task/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_a_history_page_is_kept_in_redis_briefly_and_a_save_result_for_result_expires(stack: Stack) -> None:
    """A page is read at once by the API that asked for it; kept a day like other results, each read of 50 turns
    held 16 KB of Redis for a day (several GB an hour under a steady read load)."""
    session = f"ttl-{uuid.uuid4()}"
    with stack.http() as client:
        saved = client.post("/run", json={"user_input": "kept how long?", "session_id": session}).json()
        wait_for_state(stack, saved["task_id"], "succeeded", timeout=30)
        assert client.get("/history", params={"session_id": session}).json()["count"] == 1
    backend: Any = stack.app.backend
    store = redis.Redis.from_url(stack.settings.redis_url)
    try:
        results = {key: store.get(key) or b"{}" for key in store.scan_iter(match=backend.get_key_for_task("*"))}
        pages = [
            key
            for key, raw in results.items()
            if session.encode() in raw and "history" in (json.loads(raw).get("result") or {})
        ]
        assert len(pages) == 1, "the history read's result was not stored"
        page_ttl = store.ttl(pages[0])
        save_ttl = store.ttl(backend.get_key_for_task(saved["task_id"]))
    finally:
        store.close()
    assert 0 < page_ttl <= stack.settings.read_result_expires == 300
    assert stack.settings.result_expires - 60 < save_ttl <= stack.settings.result_expires


def test_delete_history_by_session_returns_the_count(stack: Stack) -> None:
    session = f"del-{uuid.uuid4()}"
    with stack.http() as client:
        ids = [
            client.post("/run", json={"user_input": f"m{i}", "session_id": session}).json()["task_id"] for i in range(2)
        ]
        for task_id in ids:
            wait_for_state(stack, task_id, "succeeded", timeout=30)
        response = client.delete("/history", params={"session_id": session})
        assert response.status_code == 200, response.text
        assert response.json()["deleted"] == 2
        assert client.get("/history", params={"session_id": session}).json()["count"] == 0


def test_delete_history_by_age_keeps_recent_turns(stack: Stack) -> None:
    session = f"age-{uuid.uuid4()}"
    with stack.http() as client:
        task_id = client.post("/run", json={"user_input": "recent", "session_id": session}).json()["task_id"]
        wait_for_state(stack, task_id, "succeeded", timeout=30)
        response = client.delete("/history", params={"days_old": 30})
        assert response.status_code == 200
        assert client.get("/history", params={"session_id": session}).json()["count"] == 1


def test_health_is_ok_when_broker_worker_and_database_answer(stack: Stack) -> None:
    with stack.http() as client:
        response = client.get("/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert {"broker", "workers", "database", "redis"} <= set(body["checks"])


def test_openapi_docs_are_served(stack: Stack) -> None:
    with stack.http() as client:
        assert client.get("/docs").status_code == 200
        paths = client.get("/openapi.json").json()["paths"]
    assert {"/run", "/history", "/task/{task_id}", "/health"} <= set(paths)
