"""API keys: every endpoint but /health needs one, and each key sees only the sessions and tasks it created."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest

from tests.utils.auth import KEYS, PREVIOUS_KEYS, bearer
from tests.utils.processes import wait_until
from tests.utils.stack import Stack

DOC_PATHS = ("/openapi.json", "/docs", "/redoc")


def protected_operations(stack: Stack) -> list[tuple[str, str]]:
    """Every (method, path) the API publishes, plus its documentation pages; path parameters filled in."""
    with stack.http(headers=bearer("alice")) as client:
        schema = client.get("/openapi.json").json()
    operations = [
        (method.upper(), re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path))
        for path, methods in schema["paths"].items()
        for method in methods
        if not path.startswith("/health")
    ]
    return [*operations, *(("GET", path) for path in DOC_PATHS)]


def assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401, f"{response.request.method} {response.request.url}: {response.text}"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"] == "unauthorized"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-key-of-this-service"},
        {"Authorization": f"Basic {KEYS['alice']}"},
        {"Authorization": f"Bearer {KEYS['alice']}x"},
        {"Authorization": "Bearer"},
        {"X-API-Key": KEYS["alice"]},
    ],
    ids=["none", "unknown", "basic-scheme", "longer", "empty", "other-header"],
)
def test_every_endpoint_but_health_refuses_requests_without_a_valid_key(
    keyed_stack: Stack, headers: dict[str, str]
) -> None:
    operations = protected_operations(keyed_stack)
    assert {"/run", "/history", "/openapi.json"} <= {path for _, path in operations}
    with keyed_stack.http(headers=headers) as client:
        for method, path in operations:
            body: dict[str, Any] | None = {"user_input": "hello"} if method == "POST" else None
            assert_unauthorized(client.request(method, path, json=body))


def test_health_needs_no_key(keyed_stack: Stack) -> None:
    with keyed_stack.http() as client:
        response = client.get("/health")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ok"


def test_a_valid_key_opens_the_api_and_its_documentation(keyed_stack: Stack) -> None:
    with keyed_stack.http(headers=bearer("bob")) as client:
        run = client.post("/run", json={"user_input": "hello"})
        docs = [client.get(path) for path in DOC_PATHS]
    assert run.status_code == 200, run.text
    assert all(page.status_code == 200 for page in docs)
    assert docs[0].json()["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"


def run_turn(stack: Stack, owner: str, session: str, text: str) -> dict[str, Any]:
    with stack.http(headers=bearer(owner)) as client:
        response = client.post("/run", json={"user_input": text, "session_id": session})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def history(stack: Stack, owner: str, **params: Any) -> list[dict[str, Any]]:
    with stack.http(headers=bearer(owner)) as client:
        response = client.get("/history", params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    return list(response.json()["history"])


def wait_until_stored(stack: Stack, *turn_ids: str) -> None:
    wanted = set(turn_ids)
    wait_until(lambda: wanted <= {turn["turn_id"] for turn in stack.stored_turns()}, 60, what="the turns to be stored")


def test_each_key_sees_only_its_own_history_even_in_a_shared_session_id(keyed_stack: Stack) -> None:
    session = f"shared-{uuid.uuid4()}"
    alices = run_turn(keyed_stack, "alice", session, "alice speaking")
    bobs = run_turn(keyed_stack, "bob", session, "bob speaking")
    wait_until_stored(keyed_stack, alices["turn_id"], bobs["turn_id"])

    assert [t["turn_id"] for t in history(keyed_stack, "alice", session_id=session)] == [alices["turn_id"]]
    assert [t["turn_id"] for t in history(keyed_stack, "bob", session_id=session)] == [bobs["turn_id"]]
    assert alices["turn_id"] not in {t["turn_id"] for t in history(keyed_stack, "bob")}
    assert bobs["turn_id"] not in {t["turn_id"] for t in history(keyed_stack, "alice")}


def test_the_model_remembers_only_the_callers_own_turns(keyed_stack: Stack) -> None:
    session = f"memory-{uuid.uuid4()}"
    run_turn(keyed_stack, "alice", session, "first from alice")
    run_turn(keyed_stack, "alice", session, "second from alice")
    bobs = run_turn(keyed_stack, "bob", session, "first from bob")
    assert "(I remember 0 earlier turns.)" in bobs["answer"]


def test_a_key_cannot_delete_another_keys_turns(keyed_stack: Stack) -> None:
    session = f"keep-{uuid.uuid4()}"
    alices = run_turn(keyed_stack, "alice", session, "do not delete me")
    wait_until_stored(keyed_stack, alices["turn_id"])

    with keyed_stack.http(headers=bearer("bob")) as client:
        by_session = client.delete("/history", params={"session_id": session})
        by_age = client.delete("/history", params={"days_old": 0})
    assert by_session.status_code == by_age.status_code == 200
    assert by_session.json()["deleted"] == 0

    assert [t["turn_id"] for t in history(keyed_stack, "alice", session_id=session)] == [alices["turn_id"]]


def test_a_key_deletes_its_own_session(keyed_stack: Stack) -> None:
    session = f"mine-{uuid.uuid4()}"
    turn = run_turn(keyed_stack, "bob", session, "delete me")
    wait_until_stored(keyed_stack, turn["turn_id"])
    with keyed_stack.http(headers=bearer("bob")) as client:
        response = client.delete("/history", params={"session_id": session})
    assert response.status_code == 200
    assert response.json()["deleted"] == 1
    assert history(keyed_stack, "bob", session_id=session) == []


def test_another_keys_task_is_answered_like_an_unknown_task(keyed_stack: Stack) -> None:
    turn = run_turn(keyed_stack, "alice", f"task-{uuid.uuid4()}", "whose task is this")
    with keyed_stack.http(headers=bearer("bob")) as bob:
        foreign = bob.get(f"/task/{turn['task_id']}")
        unknown = bob.get(f"/task/{uuid.uuid4()}")
    with keyed_stack.http(headers=bearer("alice")) as alice:
        own = alice.get(f"/task/{turn['task_id']}")
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json()["error"] == unknown.json()["error"] == "not_found"
    assert own.status_code == 200
    assert own.json()["task_id"] == turn["task_id"]


def test_turns_are_stored_with_the_name_of_the_key_that_created_them(keyed_stack: Stack) -> None:
    turn = run_turn(keyed_stack, "bob", f"owner-{uuid.uuid4()}", "who am i")
    wait_until_stored(keyed_stack, turn["turn_id"])
    bobs = keyed_stack.call("celery_tasks.get_conversation_history_task", limit=1000, owner="bob")
    alices = keyed_stack.call("celery_tasks.get_conversation_history_task", limit=1000, owner="alice")
    assert turn["turn_id"] in {t["turn_id"] for t in bobs["history"]}
    assert turn["turn_id"] not in {t["turn_id"] for t in alices["history"]}


def test_the_open_service_warns_at_start_and_the_keyed_one_does_not(sqlite_stack: Stack, keyed_stack: Stack) -> None:
    open_log = next(p for p in sqlite_stack.processes if p.name.endswith("api")).log()
    keyed_log = next(p for p in keyed_stack.processes if p.name.endswith("api")).log()
    assert "WARNING" in open_log and "API_KEYS is not set" in open_log
    assert "API_KEYS is not set" not in keyed_log


def test_a_previous_key_still_opens_the_same_names_sessions_during_rotation(keyed_stack: Stack) -> None:
    session = f"rotate-{uuid.uuid4()}"
    turn = run_turn(keyed_stack, "alice", session, "before the rotation")
    wait_until_stored(keyed_stack, turn["turn_id"])
    with keyed_stack.http(headers={"Authorization": f"Bearer {PREVIOUS_KEYS['alice']}"}) as client:
        page = client.get("/history", params={"session_id": session})
        task = client.get(f"/task/{turn['task_id']}")
    assert page.status_code == 200
    assert [t["turn_id"] for t in page.json()["history"]] == [turn["turn_id"]]
    assert task.status_code == 200
    api_log = next(p for p in keyed_stack.processes if p.name.endswith("api")).log()
    assert "alice still uses its key from API_KEYS_PREVIOUS" in api_log
