"""SessionHistory against the real Redis and a real worker: how answered and stored turns merge into pages."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis

from convoflow.dispatch.gateway import TaskGateway
from convoflow.dispatch.recent import RecentTurns
from convoflow.services import outbox
from convoflow.services.history import SessionHistory
from tests.utils.stack import Stack

pytestmark = pytest.mark.anyio

SAVE = "celery_tasks.save_conversation_task"
DELETE = "celery_tasks.delete_conversation_history_task"
# Recent: the database is shared with tests that delete turns older than a few days.
BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


@pytest.fixture
async def history(sqlite_stack: Stack) -> AsyncIterator[SessionHistory]:
    settings = sqlite_stack.settings
    # The history task object resolves its app at send time: make it this stack's, not the last one built.
    sqlite_stack.app.set_default()
    client = aioredis.Redis.from_url(settings.redis_url)
    gateway = TaskGateway(settings, sqlite_stack.app, client)
    try:
        yield SessionHistory(settings, gateway, RecentTurns(settings, client))
    finally:
        await gateway.close()


def turn(session: str, owner: str, minute: int, label: str) -> dict[str, Any]:
    return {
        "user_input": f"q-{label}",
        "ai_response": f"a-{label}",
        "session_id": session,
        "turn_id": str(uuid.uuid4()),
        "timestamp": (BASE + timedelta(minutes=minute)).isoformat(),
        "owner": owner,
        "model": "offline-echo",
        "status": "complete",
    }


def store(stack: Stack, item: dict[str, Any]) -> None:
    """What a worker does with a queued save: store the turn, then take it out of the outbox."""
    stack.call(SAVE, **item)


async def answer(history: SessionHistory, item: dict[str, Any]) -> None:
    """What the API does once a turn is answered: the turn waits in the outbox and joins the session's list."""
    async with history.recent.redis.pipeline(transaction=True) as pipe:
        outbox.add_commands(pipe, history.settings, [item])
        await pipe.execute()
    await history.recent.push_many([(item, item["owner"])])


def labels(turns: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    return [(str(item["user_input"]).removeprefix("q-"), bool(item["persisted"])) for item in turns]


async def test_a_page_merges_pending_and_stored_turns_newest_first_each_once(
    history: SessionHistory, sqlite_stack: Stack
) -> None:
    owner, session = f"o-{uuid.uuid4().hex[:8]}", "merge"
    s1, s2, s3 = (turn(session, owner, minute, f"s{minute}") for minute in (1, 2, 3))
    p4, p5 = turn(session, owner, 4, "p4"), turn(session, owner, 5, "p5")
    await answer(history, s3)  # cached and then stored: listed once, as stored
    for item in (s1, s2, s3):
        store(sqlite_stack, item)
    for item in (p4, p5):
        await answer(history, item)

    page = await history.page(limit=10, session_id=session, owner=owner)

    assert page.partial is False
    assert labels(page.turns) == [("p5", False), ("p4", False), ("s3", True), ("s2", True), ("s1", True)]
    assert [item["id"] is None for item in page.turns] == [True, True, False, False, False]


async def test_before_pages_backwards_across_pending_and_stored_turns(
    history: SessionHistory, sqlite_stack: Stack
) -> None:
    owner, session = f"o-{uuid.uuid4().hex[:8]}", "paging"
    stored = [turn(session, owner, minute, f"s{minute}") for minute in (1, 2, 3)]
    pending = [turn(session, owner, minute, f"p{minute}") for minute in (4, 5)]
    for item in stored:
        store(sqlite_stack, item)
    for item in pending:
        await answer(history, item)

    first = await history.page(limit=2, session_id=session, owner=owner)
    from_pending = await history.page(
        limit=2, session_id=session, owner=owner, before=uuid.UUID(first.turns[-1]["turn_id"])
    )
    from_stored = await history.page(
        limit=2, session_id=session, owner=owner, before=uuid.UUID(from_pending.turns[-1]["turn_id"])
    )
    mid_cache = await history.page(limit=2, session_id=session, owner=owner, before=uuid.UUID(pending[1]["turn_id"]))

    assert labels(first.turns) == [("p5", False), ("p4", False)]
    assert labels(from_pending.turns) == [("s3", True), ("s2", True)]
    assert labels(from_stored.turns) == [("s1", True)]
    assert labels(mid_cache.turns) == [("p4", False), ("s3", True)]


async def test_a_stored_turn_deleted_from_the_database_does_not_come_back_from_the_cache(
    history: SessionHistory, sqlite_stack: Stack
) -> None:
    owner, session = f"o-{uuid.uuid4().hex[:8]}", "deleted"
    old = turn(session, owner, 1, "old")
    await answer(history, old)
    store(sqlite_stack, old)
    # Deleted behind the cache's back, as the retention cleanup does.
    sqlite_stack.call(DELETE, session_id=session, owner=owner)

    page = await history.page(limit=10, session_id=session, owner=owner)

    assert page.turns == []


async def test_other_owners_cached_turns_stay_out(history: SessionHistory) -> None:
    session = "shared-name"
    mine, theirs = f"o-{uuid.uuid4().hex[:8]}", f"o-{uuid.uuid4().hex[:8]}"
    await answer(history, turn(session, theirs, 1, "theirs"))
    await answer(history, turn(session, mine, 2, "mine"))

    page = await history.page(limit=10, session_id=session, owner=mine)

    assert labels(page.turns) == [("mine", False)]


async def test_turns_read_back_intact_from_the_cache_the_outbox_and_the_database_whatever_their_text(
    history: SessionHistory, sqlite_stack: Stack
) -> None:
    """The cache and the outbox hold UTF-8 JSON that the snapshot script, the API and the workers read back as
    written; text that spells another turn's id key does not fool the script's search for each turn's id."""
    owner, session = f"o-{uuid.uuid4().hex[:8]}", "unicode"
    stored, pending = turn(session, owner, 1, "s"), turn(session, owner, 2, "p")
    for item, other, text in ((stored, pending, "存储的 ✓ é"), (pending, stored, '你好 👋 \u2028 "quoted"')):
        spoof = f'"turn_id":"{other["turn_id"]}", "turn_id": "{other["turn_id"]}"'
        item["user_input"], item["ai_response"] = f"q-{text} {spoof}", f"a-{text} {spoof}"
    await answer(history, stored)
    store(sqlite_stack, stored)
    await answer(history, pending)

    page = await history.page(limit=10, session_id=session, owner=owner)
    memory = await history.recent.newest(owner, session, 10)

    assert [(item["user_input"], item["persisted"]) for item in page.turns] == [
        (pending["user_input"], False),
        (stored["user_input"], True),
    ]
    assert [item["ai_response"] for item in page.turns] == [pending["ai_response"], stored["ai_response"]]
    assert [item["user_input"] for item in memory] == [pending["user_input"], stored["user_input"]]
