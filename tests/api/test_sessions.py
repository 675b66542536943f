"""GET /sessions, DELETE /sessions/{id} and GET /history?before= through the real API."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.utils.conversations import history, wait_until_persisted
from tests.utils.stack import Stack

SAVE = "celery_tasks.save_conversation_task"
# Later than anything else the shared database holds, so these sessions lead the listing.
FUTURE = datetime(2100, 1, 1, tzinfo=UTC)


def test_sessions_are_listed_most_recent_first_with_cursor_paging(sqlite_stack: Stack) -> None:
    tag = uuid.uuid4().hex[:8]
    quiet, loud, middle = f"quiet-{tag}", f"loud-{tag}", f"middle-{tag}"
    for session, day in ((quiet, 0), (quiet, 1), (loud, 3), (middle, 2)):
        stamp = (FUTURE + timedelta(days=day)).isoformat()
        sqlite_stack.call(SAVE, "q", "a", session, turn_id=str(uuid.uuid4()), timestamp=stamp)
    try:
        with sqlite_stack.http() as client:
            first = client.get("/sessions", params={"limit": 2})
            assert first.status_code == 200, first.text
            second = client.get("/sessions", params={"limit": 2, "cursor": first.json()["next_cursor"]}).json()
    finally:
        with sqlite_stack.http() as client:
            for session in (quiet, loud, middle):
                client.delete(f"/sessions/{session}")

    page = first.json()
    assert page["count"] == 2
    assert [item["session_id"] for item in page["sessions"]] == [loud, middle]
    assert page["next_cursor"]
    head = second["sessions"][0]
    assert head == {
        "session_id": quiet,
        "turn_count": 2,
        "first_activity": FUTURE.isoformat(),
        "last_activity": (FUTURE + timedelta(days=1)).isoformat(),
    }


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"cursor": "not a cursor"},
        {"cursor": base64.urlsafe_b64encode(b"[1, 2]").decode()},
        {"cursor": "x" * 600},
    ],
)
def test_sessions_rejects_a_bad_limit_or_cursor_with_422(sqlite_stack: Stack, params: dict[str, str | int]) -> None:
    with sqlite_stack.http() as client:
        response = client.get("/sessions", params=params)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "validation_error"


def test_deleting_a_session_removes_its_turns_and_its_memory(sqlite_stack: Stack) -> None:
    session = f"gone-{uuid.uuid4()}"
    with sqlite_stack.http() as client:
        for text in ("one", "two"):
            client.post("/run", json={"user_input": text, "session_id": session})
        wait_until_persisted(sqlite_stack, session, 2)
        response = client.delete(f"/sessions/{session}")
        assert response.status_code == 200, response.text
        assert history(sqlite_stack, session_id=session)["count"] == 0
        fresh = client.post("/run", json={"user_input": "three", "session_id": session}).json()
    body = response.json()
    assert (body["session_id"], body["deleted"]) == (session, 2)
    assert body["task_id"]
    assert "remember 0 earlier turns" in fresh["answer"]


@pytest.mark.parametrize("session_id", ["has space", "s" * 129, "-leading-dash"])
def test_deleting_a_session_rejects_an_invalid_id_with_422(sqlite_stack: Stack, session_id: str) -> None:
    with sqlite_stack.http() as client:
        response = client.delete(f"/sessions/{session_id}")
    assert response.status_code == 422


def test_history_pages_backwards_with_before(sqlite_stack: Stack) -> None:
    session = f"long-{uuid.uuid4()}"
    with sqlite_stack.http() as client:
        answered = [
            client.post("/run", json={"user_input": f"m{index}", "session_id": session}).json()["turn_id"]
            for index in range(5)
        ]
    wait_until_persisted(sqlite_stack, session, 5)

    pages: list[list[str]] = []
    before: str | None = None
    while True:
        params = {"session_id": session, "limit": 2, **({"before": before} if before else {})}
        page = [item["turn_id"] for item in history(sqlite_stack, **params)["history"]]
        if not page:
            break
        pages.append(page)
        before = page[-1]

    assert pages == [answered[4:2:-1], answered[2:0:-1], answered[0:1]]


def test_history_before_must_be_a_turn_id(sqlite_stack: Stack) -> None:
    with sqlite_stack.http() as client:
        response = client.get("/history", params={"session_id": "x", "before": "yesterday"})
    assert response.status_code == 422
    assert "before" in response.json()["message"]


def test_openapi_describes_the_new_endpoints(sqlite_stack: Stack) -> None:
    with sqlite_stack.http() as client:
        paths = client.get("/openapi.json").json()["paths"]
    assert {"/run/stream", "/runs", "/sessions", "/sessions/{session_id}", "/task/{task_id}/cancel"} <= set(paths)
    assert "text/event-stream" in paths["/run/stream"]["post"]["responses"]["200"]["content"]
    assert "202" in paths["/runs"]["post"]["responses"]
    assert {"404", "409"} <= set(paths["/task/{task_id}/cancel"]["post"]["responses"])
    assert {"limit", "cursor"} <= {param["name"] for param in paths["/sessions"]["get"]["parameters"]}
    assert "before" in {param["name"] for param in paths["/history"]["get"]["parameters"]}
