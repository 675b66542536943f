"""POST /run/stream through the real API: tokens, the saved turn, clients that leave, failures as events."""

from __future__ import annotations

import uuid

import pytest

from tests.utils.conversations import history, leave_after_tokens, sse_events, stream, wait_until_persisted
from tests.utils.ops import scrape, value
from tests.utils.processes import wait_until
from tests.utils.stack import Stack


def test_stream_sends_tokens_then_done_and_saves_the_joined_deltas(sqlite_stack: Stack) -> None:
    session = f"stream-{uuid.uuid4()}"
    with sqlite_stack.http() as client:
        events = stream(client, {"user_input": "tell me something", "session_id": session})

    names = [name for name, _ in events]
    assert names[-1] == "done" and set(names[:-1]) == {"token"} and len(names) > 3
    deltas = "".join(data["delta"] for name, data in events if name == "token")
    done = events[-1][1]
    assert set(done) == {"answer", "session_id", "turn_id", "task_id"}
    assert done["answer"] == deltas and "tell me something" in deltas
    assert done["session_id"] == session
    [turn] = wait_until_persisted(sqlite_stack, session, 1)
    assert (turn["turn_id"], turn["ai_response"], turn["status"]) == (done["turn_id"], deltas, "complete")


def test_stream_without_session_id_starts_a_new_session(sqlite_stack: Stack) -> None:
    with sqlite_stack.http() as client:
        events = stream(client, {"user_input": "hi"})
    assert uuid.UUID(events[-1][1]["session_id"])


def test_a_streamed_turn_is_remembered_by_the_next_turn(sqlite_stack: Stack) -> None:
    session = f"stream-mem-{uuid.uuid4()}"
    with sqlite_stack.http() as client:
        stream(client, {"user_input": "first", "session_id": session})
        second = client.post("/run", json={"user_input": "second", "session_id": session}).json()
    assert "remember 1 earlier turn" in second["answer"]


@pytest.mark.parametrize("body", [{"user_input": ""}, {"user_input": "hi", "session_id": "bad id"}, {}])
def test_stream_rejects_invalid_bodies_with_422_before_streaming(sqlite_stack: Stack, body: dict[str, str]) -> None:
    with sqlite_stack.http() as client:
        response = client.post("/run/stream", json=body)
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"


def test_stream_rejects_a_body_that_is_not_json_with_415(sqlite_stack: Stack) -> None:
    with sqlite_stack.http() as client:
        response = client.post("/run/stream", content=b"user_input=hi", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415


def test_a_client_leaving_mid_stream_leaves_the_partial_answer_saved_as_interrupted(
    split_pools_stack: Stack,
) -> None:
    stack = split_pools_stack
    session = f"leave-{uuid.uuid4()}"
    received = leave_after_tokens(stack, {"user_input": "a long answer please", "session_id": session}, 3)

    [turn] = wait_until_persisted(stack, session, 1)
    assert turn["status"] == "interrupted"
    assert turn["ai_response"].startswith("".join(received))
    assert "(I remember" not in turn["ai_response"]  # the answer's end was never produced
    assert turn["user_input"] == "a long answer please"


def test_the_next_turn_remembers_an_interrupted_turn(split_pools_stack: Stack) -> None:
    stack = split_pools_stack
    session = f"leave-mem-{uuid.uuid4()}"
    with (
        stack.http() as client,
        client.stream("POST", "/run/stream", json={"user_input": "cut me off", "session_id": session}) as r,
    ):
        next(sse_events(r))

    def listed() -> bool:
        return bool(history(stack, session_id=session)["count"] == 1)

    wait_until(listed, 30, what="the interrupted turn in history")
    with stack.http() as client:
        answer = client.post("/run", json={"user_input": "go on", "session_id": session}).json()["answer"]
    assert "remember 1 earlier turn" in answer


def test_a_quiet_model_gets_keep_alive_comments_between_whole_events(split_pools_stack: Stack) -> None:
    # The model writes a word every few hundred milliseconds; STREAM_PING_SECONDS is 0.05 in this stack.
    session = f"ping-{uuid.uuid4()}"
    with (
        split_pools_stack.http() as client,
        client.stream("POST", "/run/stream", json={"user_input": "take your time", "session_id": session}) as r,
    ):
        body = r.read().decode()

    blocks = body.split("\n\n")
    assert blocks[-1] == ""
    pings = [block for block in blocks if block == ": ping"]
    events = [block for block in blocks[:-1] if block != ": ping"]
    assert len(pings) >= 2, body
    # Every other block is one whole event (pings never land inside one), tokens first and `done` last.
    assert all(block.startswith(("event: token\ndata: {", "event: done\ndata: {")) for block in events), body
    assert events[-1].startswith("event: done") and all(block.startswith("event: token") for block in events[:-1])
    first_token, last_token = blocks.index(events[0]), blocks.index(events[-2])
    assert any(first_token < index < last_token for index, block in enumerate(blocks) if block == ": ping")


def test_a_streams_time_to_first_token_is_measured_apart_from_the_whole_call(split_pools_stack: Stack) -> None:
    # The slow offline model spreads its latency over the answer's words: the first comes long before the end.
    labels = {"provider": "offline", "model": "offline-echo"}
    metrics_url = f"{split_pools_stack.api_url}/metrics"
    before = scrape(metrics_url)
    with split_pools_stack.http() as client:
        events = stream(client, {"user_input": "how long until the first word?"})
    after = scrape(metrics_url)
    assert events[-1][0] == "done"

    def grew(name: str, **extra: str) -> float:
        return value(after, name, **labels, **extra) - value(before, name, **labels, **extra)

    assert grew("convoflow_model_first_token_seconds_count") == 1
    first_token = grew("convoflow_model_first_token_seconds_sum")
    whole_call = grew("convoflow_model_request_duration_seconds_sum", mode="stream")
    assert 0 < first_token < whole_call / 2
