"""The sessions listing task through Celery's task API, against a real worker on each database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from tests.utils.stack import Stack

SAVE = "celery_tasks.save_conversation_task"
LIST = "convoflow.list_sessions"
HISTORY = "celery_tasks.get_conversation_history_task"
# Recent: other tests delete turns older than a few days from the same databases.
RECENT = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


def _save(stack: Stack, session: str, owner: str, at: datetime) -> str:
    turn_id = str(uuid.uuid4())
    stack.call(SAVE, "q", "a", session, turn_id=turn_id, timestamp=at.isoformat(), owner=owner)
    return turn_id


def test_sessions_are_listed_newest_activity_first_with_counts_and_bounds(stack: Stack) -> None:
    owner = f"o-{uuid.uuid4().hex[:8]}"
    base = RECENT
    for minute in (0, 5):
        _save(stack, "older", owner, base + timedelta(minutes=minute))
    for minute in (1, 2, 9):
        _save(stack, "newer", owner, base + timedelta(minutes=minute))
    _save(stack, "foreign", f"x-{owner}", base + timedelta(minutes=30))

    result = stack.call(LIST, limit=10, owner=owner)

    assert result["success"] is True
    assert result["next_cursor"] is None
    assert result["sessions"] == [
        {
            "session_id": "newer",
            "turn_count": 3,
            "first_activity": (base + timedelta(minutes=1)).isoformat(),
            "last_activity": (base + timedelta(minutes=9)).isoformat(),
        },
        {
            "session_id": "older",
            "turn_count": 2,
            "first_activity": base.isoformat(),
            "last_activity": (base + timedelta(minutes=5)).isoformat(),
        },
    ]


def test_cursor_pages_cover_every_session_once_even_with_equal_last_activity(stack: Stack) -> None:
    owner = f"o-{uuid.uuid4().hex[:8]}"
    same = RECENT.replace(microsecond=123456)
    names = [f"s{index}" for index in range(5)]
    for name in names:
        _save(stack, name, owner, same)

    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = stack.call(LIST, limit=2, cursor=cursor, owner=owner)
        assert page["count"] <= 2
        seen += [item["session_id"] for item in page["sessions"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == sorted(names, reverse=True)


def test_history_pages_backwards_from_a_point_in_time(stack: Stack) -> None:
    owner = f"o-{uuid.uuid4().hex[:8]}"
    base = RECENT
    for minute in range(4):
        _save(stack, "timeline", owner, base + timedelta(minutes=minute))

    cutoff = (base + timedelta(minutes=2)).isoformat()
    result = stack.call(HISTORY, limit=10, session_id="timeline", owner=owner, before_timestamp=cutoff)

    assert [item["timestamp"] for item in result["history"]] == [
        (base + timedelta(minutes=1)).isoformat(),
        base.isoformat(),
    ]
