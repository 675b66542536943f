"""The API's Redis client sends a command again on a new connection when its connection breaks; when the break
came after Redis ran the command (a lost reply), running it twice must do no harm. A real Redis behind a proxy
that loses one reply."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from convoflow.config import Settings
from convoflow.dispatch.recent import RecentTurns
from convoflow.services.idempotency import Claim, IdempotentRequests
from convoflow.services.redis_client import reconnect_once
from tests.conftest import make_stack
from tests.utils.services import RedisTarget
from tests.utils.tcp_proxy import LossyProxy, lossy_proxy

pytestmark = pytest.mark.anyio


@pytest.fixture
def proxy(redis_target: RedisTarget) -> Iterator[LossyProxy]:
    with lossy_proxy(redis_target.host, redis_target.port) as proxy:
        yield proxy


@pytest.fixture
def settings(sqlite_url: str, redis_target: RedisTarget, log_dir: Path) -> Iterator[Settings]:
    """A private Redis namespace (no processes), emptied afterwards."""
    stack = make_stack("lost-replies", redis_target, sqlite_url, log_dir, IDEMPOTENCY_WAIT_SECONDS="1")
    try:
        yield stack.settings
    finally:
        stack.stop()


@pytest.fixture
async def client(proxy: LossyProxy, redis_target: RedisTarget) -> AsyncIterator[aioredis.Redis]:
    """Configured like the API's client (convoflow.api.app), through the proxy."""
    auth = f":{redis_target.password}@" if redis_target.password else ""
    client = aioredis.Redis.from_url(f"redis://{auth}127.0.0.1:{proxy.port}/0", retry=reconnect_once())
    try:
        yield client
    finally:
        await client.aclose()


async def test_an_idempotency_claim_whose_reply_was_lost_is_still_ours(
    proxy: LossyProxy, settings: Settings, client: aioredis.Redis
) -> None:
    requests = IdempotentRequests(settings, client)
    proxy.lose_reply_to(b"NX")

    started = await requests.begin("owner", f"key-{uuid.uuid4()}", {"user_input": "hello"})

    assert proxy.lost_replies == 1
    assert isinstance(started, Claim)  # not "a request with this Idempotency-Key is still running"


async def test_a_turn_whose_push_was_sent_twice_is_remembered_once(
    proxy: LossyProxy, settings: Settings, client: aioredis.Redis
) -> None:
    recent = RecentTurns(settings, client)
    session = f"lost-{uuid.uuid4()}"
    turn = {
        "turn_id": str(uuid.uuid4()),
        "session_id": session,
        "user_input": "hello",
        "ai_response": "hi",
        "timestamp": datetime.now(UTC).isoformat(),
    }
    proxy.lose_reply_to(b"LPUSH")

    await recent.push_many([(turn, None)])

    assert proxy.lost_replies == 1
    assert await client.llen(settings.redis_key("recent", "-", session)) == 2  # the push ran twice
    assert [item["turn_id"] for item in await recent.newest(None, session, 10)] == [turn["turn_id"]]
