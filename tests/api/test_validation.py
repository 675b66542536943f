"""Bad input gets a 4xx with a JSON body that says what was wrong, never a 500."""

from __future__ import annotations

import socket

import pytest

from tests.utils.processes import wait_until
from tests.utils.stack import Stack


def _post_raw(stack: Stack, body: bytes, content_type: str = "application/json") -> tuple[int, dict[str, object]]:
    with stack.http() as client:
        response = client.post("/run", content=body, headers={"Content-Type": content_type})
    return response.status_code, response.json()


@pytest.mark.parametrize(
    ("body", "field_hint"),
    [
        ({"user_input": ""}, "user_input"),
        ({"user_input": "   \n\t "}, "whitespace"),
        ({"user_input": "x" * 8001}, "at most 8000"),
        ({"user_input": 123}, "user_input"),
        ({"user_input": None}, "user_input"),
        ({"user_input": ["a"]}, "user_input"),
        ({}, "user_input"),
        ({"user_input": "hi", "session_id": "has spaces"}, "session_id"),
        ({"user_input": "hi", "session_id": "s" * 129}, "session_id"),
        ({"user_input": "hi", "session_id": 42}, "session_id"),
        ({"user_input": "hi", "unexpected": 1}, "unexpected"),
        ({"user_input": "null byte \x00 inside"}, "control characters"),
        ({"user_input": "bell \x07"}, "control characters"),
    ],
)
def test_run_rejects_invalid_bodies_with_422(sqlite_stack: Stack, body: dict[str, object], field_hint: str) -> None:
    with sqlite_stack.http() as client:
        response = client.post("/run", json=body)
    assert response.status_code == 422, response.text
    payload = response.json()
    assert payload["error"] == "validation_error"
    assert field_hint in str(payload["message"])


def test_run_rejects_unpaired_surrogates(sqlite_stack: Stack) -> None:
    status, payload = _post_raw(sqlite_stack, b'{"user_input": "broken \\ud800 text"}')
    assert status == 422
    assert "Unicode" in str(payload["message"])


def test_run_rejects_broken_json(sqlite_stack: Stack) -> None:
    status, payload = _post_raw(sqlite_stack, b'{"user_input": "unterminated')
    assert status == 422
    assert payload["error"] == "validation_error"


def test_run_rejects_invalid_utf8_bytes(sqlite_stack: Stack) -> None:
    status, payload = _post_raw(sqlite_stack, b'{"user_input": "\xff\xfe"}')
    assert status in (400, 422)
    assert "error" in payload


def test_run_rejects_a_non_json_content_type_with_415(sqlite_stack: Stack) -> None:
    status, payload = _post_raw(sqlite_stack, b"user_input=hello", "application/x-www-form-urlencoded")
    assert status == 415
    assert "application/json" in str(payload["message"])


def test_run_rejects_huge_bodies_with_413(sqlite_stack: Stack) -> None:
    status, payload = _post_raw(sqlite_stack, b'{"user_input": "' + b"x" * 2_000_000 + b'"}')
    assert status == 413
    assert payload["error"] == "request_too_large"


def test_run_keeps_tabs_newlines_and_emoji(sqlite_stack: Stack) -> None:
    with sqlite_stack.http() as client:
        response = client.post("/run", json={"user_input": "line one\n\tline two 🙂", "session_id": "ok-text"})
    assert response.status_code == 200


@pytest.mark.parametrize("limit", ["0", "-1", "1001", "abc", "1e3"])
def test_history_rejects_limits_outside_1_to_1000(sqlite_stack: Stack, limit: str) -> None:
    with sqlite_stack.http() as client:
        response = client.get("/history", params={"limit": limit})
    assert response.status_code == 422
    assert "limit" in response.json()["message"]


def test_history_rejects_malformed_session_ids(sqlite_stack: Stack) -> None:
    with sqlite_stack.http() as client:
        response = client.get("/history", params={"session_id": "a b;DROP"})
    assert response.status_code == 422


@pytest.mark.parametrize("params", [{}, {"session_id": "s1", "days_old": "3"}])
def test_delete_history_needs_exactly_one_of_session_or_age(sqlite_stack: Stack, params: dict[str, str]) -> None:
    with sqlite_stack.http() as client:
        response = client.delete("/history", params=params)
    assert response.status_code == 400
    assert "exactly one" in response.json()["message"]


@pytest.mark.parametrize("days_old", ["-1", "x"])
def test_delete_history_rejects_bad_ages(sqlite_stack: Stack, days_old: str) -> None:
    with sqlite_stack.http() as client:
        response = client.delete("/history", params={"days_old": days_old})
    assert response.status_code == 422


@pytest.mark.parametrize("task_id", ["not-a-uuid", "123", "' OR 1=1 --"])
def test_task_status_rejects_malformed_ids_with_422(sqlite_stack: Stack, task_id: str) -> None:
    with sqlite_stack.http() as client:
        response = client.get(f"/task/{task_id}")
    assert response.status_code == 422
    assert "task_id" in response.json()["message"]


def test_unknown_paths_and_methods_answer_json(sqlite_stack: Stack) -> None:
    with sqlite_stack.http() as client:
        missing = client.get("/nowhere")
        wrong_method = client.put("/run", json={})
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert wrong_method.status_code == 405 and wrong_method.json()["error"] == "method_not_allowed"


@pytest.mark.parametrize("body", [b"[]", b'"hello"', b"null", b"42", b"true", b'[{"user_input": "hi"}]'])
def test_run_rejects_json_that_is_not_an_object(sqlite_stack: Stack, body: bytes) -> None:
    status, payload = _post_raw(sqlite_stack, body)
    assert status == 422
    assert "object" in str(payload["message"])


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"user_input": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
        b'{"user_input": "hi", "session_id": ' + b"9" * 5_000 + b"}",
    ],
    ids=["nested-array", "nested-field", "huge-integer"],
)
def test_run_rejects_json_nested_too_deeply_or_with_huge_numbers(sqlite_stack: Stack, body: bytes) -> None:
    status, payload = _post_raw(sqlite_stack, body)
    assert status == 422
    assert payload["error"] == "validation_error"
    assert "could not be parsed as JSON" in str(payload["message"])


def test_run_rejects_a_body_that_is_not_utf8(sqlite_stack: Stack) -> None:
    status, payload = _post_raw(
        sqlite_stack, '{"user_input": "caf\u00e9"}'.encode("latin-1"), "application/json; charset=latin-1"
    )
    assert status == 422
    assert "UTF-8" in str(payload["message"])


def test_sql_looking_input_is_answered_and_stored_verbatim(sqlite_stack: Stack) -> None:
    text = "'); DROP TABLE conversation_turns; -- \" OR 1=1 /* \\ */"
    session = "sql-looking"
    with sqlite_stack.http() as client:
        response = client.post("/run", json={"user_input": text, "session_id": session})
    assert response.status_code == 200, response.text
    turn_id = response.json()["turn_id"]
    wait_until(lambda: bool(sqlite_stack.stored_turns(session)), 60, what="the turn to be stored")
    [stored] = [turn for turn in sqlite_stack.stored_turns(session) if turn["turn_id"] == turn_id]
    assert stored["user_input"] == text


@pytest.mark.parametrize("limit", [str(10**30), str(-(10**30)), "NaN", "Infinity", "1.5", "0x10", ""])
def test_history_rejects_huge_and_non_integer_limits(sqlite_stack: Stack, limit: str) -> None:
    with sqlite_stack.http() as client:
        response = client.get("/history", params={"limit": limit})
    assert response.status_code == 422, response.text
    assert "limit" in response.json()["message"]


def test_delete_history_rejects_huge_ages(sqlite_stack: Stack) -> None:
    with sqlite_stack.http() as client:
        response = client.delete("/history", params={"days_old": str(10**30)})
    assert response.status_code == 422
    assert "days_old" in response.json()["message"]


@pytest.mark.parametrize("raw_query", ["session_id=%ff%fe", "session_id=%ed%a0%80", "session_id=a%00b", "limit=%ff"])
def test_history_rejects_invalid_unicode_and_controls_in_the_query(sqlite_stack: Stack, raw_query: str) -> None:
    with sqlite_stack.http() as client:
        response = client.get(f"/history?{raw_query}")
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"


def test_task_status_rejects_ids_with_invalid_unicode(sqlite_stack: Stack) -> None:
    with sqlite_stack.http() as client:
        response = client.get("/task/%ff%fe")
    assert response.status_code == 422


def test_a_long_query_string_is_refused_with_414(sqlite_stack: Stack) -> None:
    with sqlite_stack.http() as client:
        response = client.get("/history", params={"session_id": "a" * 20_000})
    assert response.status_code == 414
    assert response.json()["error"] == "uri_too_long"


def test_huge_headers_are_refused_with_431(sqlite_stack: Stack) -> None:
    with sqlite_stack.http() as client:
        response = client.get("/history", headers={"X-Padding": "a" * 40_000})
    assert response.status_code == 431
    assert response.json()["error"] == "headers_too_large"


def test_a_request_line_beyond_the_servers_parser_gets_4xx_and_the_api_keeps_serving(sqlite_stack: Stack) -> None:
    port = int(sqlite_stack.api_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"GET /history?session_id=" + b"a" * 1_000_000 + b" HTTP/1.1\r\nHost: api\r\n\r\n")
        status_line = sock.recv(64).split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 4"), status_line
    with sqlite_stack.http() as client:
        assert client.get("/history", params={"limit": 1}).status_code == 200
