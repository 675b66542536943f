"""With API_KEYS, each key sees only its own sessions, streams, runs and cancels; Idempotency-Key on /runs."""

from __future__ import annotations

import uuid

from tests.utils.auth import bearer
from tests.utils.conversations import sse_events, wait_for_state, wait_until_persisted
from tests.utils.stack import Stack


def test_new_endpoints_need_an_api_key(keyed_stack: Stack) -> None:
    with keyed_stack.http() as client:
        responses = [
            client.post("/run/stream", json={"user_input": "hi"}),
            client.post("/runs", json={"user_input": "hi"}),
            client.get("/sessions"),
            client.delete("/sessions/any"),
            client.post(f"/task/{uuid.uuid4()}/cancel"),
        ]
    assert [response.status_code for response in responses] == [401] * 5


def test_a_keys_runs_sessions_and_streams_are_its_own(keyed_stack: Stack) -> None:
    session = f"mine-{uuid.uuid4()}"
    alice, bob = bearer("alice"), bearer("bob")
    with keyed_stack.http() as client:
        queued = client.post("/runs", json={"user_input": "alice's run", "session_id": session}, headers=alice)
        assert queued.status_code == 202, queued.text
        run = queued.json()
        wait_for_state(keyed_stack, run["task_id"], "succeeded", headers=alice)
        wait_until_persisted(keyed_stack, session, 1, headers=alice)
        assert client.get(f"/task/{run['task_id']}", headers=bob).status_code == 404
        assert client.post(f"/task/{run['task_id']}/cancel", headers=bob).status_code == 404
        alices = client.get("/sessions", params={"limit": 100}, headers=alice).json()["sessions"]
        bobs = client.get("/sessions", params={"limit": 100}, headers=bob).json()["sessions"]
        with client.stream(
            "POST", "/run/stream", json={"user_input": "bob here", "session_id": session}, headers=bob
        ) as response:
            done = [data for name, data in sse_events(response) if name == "done"]
        assert client.delete(f"/sessions/{session}", headers=bob).status_code == 200
    [kept] = wait_until_persisted(keyed_stack, session, 1, headers=alice)  # Bob deleted only his own turn

    assert kept["turn_id"] == run["turn_id"]
    assert session in {item["session_id"] for item in alices}
    assert session not in {item["session_id"] for item in bobs}
    # Bob's turn in a session of the same name starts without Alice's turns in its memory.
    assert "remember 0 earlier turns" in done[0]["answer"]


def test_a_repeated_runs_request_with_an_idempotency_key_gets_the_same_run(keyed_stack: Stack) -> None:
    alice = bearer("alice")
    body = {"user_input": "only once", "session_id": f"idem-{uuid.uuid4()}"}
    with keyed_stack.http() as client:
        first = client.post("/runs", json=body, headers={**alice, "Idempotency-Key": "run-once-1"})
        again = client.post("/runs", json=body, headers={**alice, "Idempotency-Key": "run-once-1"})
        other_body = client.post(
            "/runs", json={**body, "user_input": "else"}, headers={**alice, "Idempotency-Key": "run-once-1"}
        )
        as_run = client.post("/run", json=body, headers={**alice, "Idempotency-Key": "run-once-1"})
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert other_body.status_code == 422
    assert as_run.status_code == 422  # a key used for POST /runs does not replay into POST /run
