"""The seed's four tasks through Celery's task API, against a real worker on each database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from tests.utils.stack import Stack

SAVE = "celery_tasks.save_conversation_task"
HISTORY = "celery_tasks.get_conversation_history_task"
DELETE = "celery_tasks.delete_conversation_history_task"
INIT = "celery_tasks.init_database_task"


def test_save_with_the_seeds_positional_call_stores_the_turn(stack: Stack) -> None:
    session = f"seed-{uuid.uuid4()}"
    result = stack.call(SAVE, "Hello", "Hi there", session)
    assert result["success"] is True
    assert result["stored"] is True
    turns = stack.stored_turns(session)
    assert [(t["user_input"], t["ai_response"], t["turn_id"]) for t in turns] == [
        ("Hello", "Hi there", result["turn_id"])
    ]


def test_saving_the_same_turn_twice_stores_one_row(stack: Stack) -> None:
    session = f"dup-{uuid.uuid4()}"
    turn_id = str(uuid.uuid4())
    first = stack.call(SAVE, "q", "a", session, turn_id=turn_id)
    second = stack.call(SAVE, "q", "a", session, turn_id=turn_id)
    assert (first["stored"], second["stored"]) == (True, False)
    assert [t["turn_id"] for t in stack.stored_turns(session)] == [turn_id]


def test_history_is_newest_first_limited_and_filtered_by_session(stack: Stack) -> None:
    session, other = f"h-{uuid.uuid4()}", f"h-{uuid.uuid4()}"
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for index in range(5):
        stamp = (base + timedelta(minutes=index)).isoformat()
        stack.call(SAVE, f"q{index}", f"a{index}", session, turn_id=str(uuid.uuid4()), timestamp=stamp)
    stack.call(SAVE, "other", "other", other)
    result = stack.call(HISTORY, limit=3, session_id=session)
    assert result["success"] is True
    assert result["count"] == 3
    assert [t["user_input"] for t in result["history"]] == ["q4", "q3", "q2"]
    assert {t["session_id"] for t in result["history"]} == {session}


def test_text_that_looks_like_sql_or_unicode_is_stored_verbatim(stack: Stack) -> None:
    session = f"v-{uuid.uuid4()}"
    text = '\'); DROP TABLE conversation_turns; -- 你好 🙂 "quoted" \\ back'
    stack.call(SAVE, text, text[::-1], session)
    [turn] = stack.stored_turns(session)
    assert (turn["user_input"], turn["ai_response"]) == (text, text[::-1])


def test_delete_by_age_removes_only_old_turns(stack: Stack) -> None:
    session = f"age-{uuid.uuid4()}"
    old = (datetime.now(UTC) - timedelta(days=400)).isoformat()
    stack.call(SAVE, "old", "old", session, turn_id=str(uuid.uuid4()), timestamp=old)
    stack.call(SAVE, "new", "new", session)
    result = stack.call(DELETE, days_old=365)
    assert result["success"] is True
    assert result["deleted"] >= 1
    assert [t["user_input"] for t in stack.stored_turns(session)] == ["new"]


def test_delete_by_session_removes_that_session_only(stack: Stack) -> None:
    doomed, kept = f"d-{uuid.uuid4()}", f"k-{uuid.uuid4()}"
    for _ in range(3):
        stack.call(SAVE, "x", "y", doomed)
    stack.call(SAVE, "x", "y", kept)
    assert stack.call(DELETE, session_id=doomed)["deleted"] == 3
    assert stack.stored_turns(doomed) == []
    assert len(stack.stored_turns(kept)) == 1


def test_init_database_is_safe_to_run_twice(stack: Stack) -> None:
    first = stack.call(INIT)
    second = stack.call(INIT)
    assert first["success"] and second["success"]
    assert first["revision"] == second["revision"] == second["revision_before"]
