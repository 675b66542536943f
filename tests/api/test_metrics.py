"""GET /metrics on the real API: Prometheus text whose counters follow the requests, turns and model calls."""

from __future__ import annotations

import uuid

from tests.utils.auth import bearer
from tests.utils.ops import Samples, parse_metrics, value
from tests.utils.stack import Stack

OFFLINE = {"provider": "offline", "model": "offline-echo"}


def _metrics(stack: Stack) -> tuple[str, Samples]:
    with stack.http() as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return response.text, parse_metrics(response.text)


def test_counters_follow_runs_answered_turns_and_model_calls(sqlite_stack: Stack) -> None:
    _, before = _metrics(sqlite_stack)
    session = f"metrics-{uuid.uuid4()}"
    with sqlite_stack.http() as client:
        for text in ("one two three", "four five", "six"):
            assert client.post("/run", json={"user_input": text, "session_id": session}).status_code == 200
    _, after = _metrics(sqlite_stack)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("convoflow_http_requests_total", method="POST", route="/run", status="200") == 3
    assert grew("convoflow_http_request_duration_seconds_count", method="POST", route="/run", status="200") == 3
    assert grew("convoflow_turns_answered_total") == 3
    assert grew("convoflow_model_request_duration_seconds_count", mode="complete", **OFFLINE) == 3
    assert grew("convoflow_model_tokens_total", kind="prompt", counted_by="words", **OFFLINE) >= 6
    assert grew("convoflow_model_tokens_total", kind="completion", counted_by="words", **OFFLINE) > 0
    assert value(after, "convoflow_model_errors_total", mode="complete", **OFFLINE) == 0


def test_routes_are_labelled_by_template_never_by_raw_path(sqlite_stack: Stack) -> None:
    task_id = str(uuid.uuid4())
    with sqlite_stack.http() as client:
        assert client.get(f"/task/{task_id}").status_code == 404
        assert client.get(f"/no-such-page/{task_id}").status_code == 404
    text, samples = _metrics(sqlite_stack)
    assert value(samples, "convoflow_http_requests_total", method="GET", route="/task/{task_id}", status="404") >= 1
    assert value(samples, "convoflow_http_requests_total", method="GET", route="unmatched", status="404") >= 1
    assert task_id not in text
    assert "no-such-page" not in text


def test_backlog_gauges_are_read_at_scrape_time(sqlite_stack: Stack) -> None:
    _, samples = _metrics(sqlite_stack)
    assert value(samples, "convoflow_dependency_up", dependency="broker") == 1
    assert value(samples, "convoflow_dependency_up", dependency="redis") == 1
    assert ("convoflow_queue_depth", frozenset({("queue", "database")})) in samples
    assert ("convoflow_queue_oldest_message_age_seconds", frozenset({("queue", "database")})) in samples
    assert ("convoflow_persistence_lag_seconds", frozenset()) in samples
    assert ("convoflow_pending_turns", frozenset()) in samples


def test_metrics_need_an_api_key_when_keys_are_configured(keyed_stack: Stack) -> None:
    with keyed_stack.http() as client:
        refused = client.get("/metrics")
        allowed = client.get("/metrics", headers=bearer("alice"))
    assert refused.status_code == 401
    assert allowed.status_code == 200 and "convoflow_" in allowed.text


def test_request_id_is_returned_as_given_or_generated(sqlite_stack: Stack) -> None:
    with sqlite_stack.http() as client:
        given = client.get("/health/live", headers={"X-Request-ID": "client-chosen.id:1"})
        generated = client.get("/health/live")
        unacceptable = client.get("/health/live", headers={"X-Request-ID": "spaces and ] [brackets] " + "x" * 200})
    assert given.headers["x-request-id"] == "client-chosen.id:1"
    assert len(generated.headers["x-request-id"]) == 32
    assert len(unacceptable.headers["x-request-id"]) == 32
