"""Client-side helpers for the conversation endpoints: send turns at once, read server-sent events, poll tasks and
history."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import redis

from convoflow.services import outbox
from tests.utils.processes import wait_until
from tests.utils.stack import Stack


def post_turns_at_once(url: str, session_id: str, count: int) -> list[httpx.Response]:
    """`count` turns of one session (`turn <n>`) sent to POST /run at the same moment, each on its own connection."""

    async def post_all() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
            return await asyncio.gather(
                *(client.post("/run", json={"user_input": f"turn {n}", "session_id": session_id}) for n in range(count))
            )

    return asyncio.run(post_all())


def sse_events(response: httpx.Response) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event, data) pairs as they arrive; keep-alive comments are skipped."""
    event, data = "message", ""
    for line in response.iter_lines():
        if line.startswith(":"):
            continue
        if line.startswith("event:"):
            event = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data += line.removeprefix("data:").strip()
        elif line == "" and data:
            yield event, json.loads(data)
            event, data = "message", ""


def stream(client: httpx.Client, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    with client.stream("POST", "/run/stream", json=body) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        return list(sse_events(response))


def leave_after_tokens(stack: Stack, body: dict[str, Any], tokens: int) -> list[str]:
    """POST /run/stream, read `tokens` token events, then close the connection mid-stream; the deltas read."""
    received: list[str] = []
    with stack.http() as client, client.stream("POST", "/run/stream", json=body) as response:
        for name, data in sse_events(response):
            assert name == "token"
            received.append(data["delta"])
            if len(received) == tokens:
                break  # leaving the block here closes the connection
    return received


def task_status(stack: Stack, task_id: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    with stack.http(headers=headers or {}) as client:
        response = client.get(f"/task/{task_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_for_state(
    stack: Stack, task_id: str, *states: str, timeout: float = 60, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """Poll GET /task/{id} until its friendly state is one of `states`; returns that status."""
    seen: dict[str, Any] = {}

    def reached() -> bool:
        seen.update(task_status(stack, task_id, headers))
        return seen["state"] in states

    wait_until(reached, timeout, interval=0.2, what=f"task {task_id} to reach {states} (last: {seen})")
    return seen


def history(stack: Stack, headers: dict[str, str] | None = None, **params: Any) -> dict[str, Any]:
    with stack.http(headers=headers or {}) as client:
        response = client.get("/history", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_until_persisted(
    stack: Stack, session_id: str, count: int, timeout: float = 60, headers: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Poll GET /history until the session shows `count` turns, all stored; returns them."""
    items: list[dict[str, Any]] = []

    def stored() -> bool:
        items[:] = history(stack, headers, session_id=session_id)["history"]
        return len(items) == count and all(item["persisted"] for item in items)

    wait_until(stored, timeout, interval=0.2, what=f"{count} persisted turns in {session_id}")
    return items


def leave_in_outbox(stack: Stack, session_id: str, when: str, *, due: float | None = None) -> dict[str, Any]:
    """A turn answered now whose save message never reached a worker: only the outbox holds it.

    `when` goes into its texts ("asked <when>"); `due` is the outbox time it was answered (default now).
    """
    turn = {
        "turn_id": str(uuid.uuid4()),
        "task_id": str(uuid.uuid4()),
        "session_id": session_id,
        "user_input": f"asked {when}",
        "ai_response": f"answered {when}",
        "timestamp": datetime.now(UTC).isoformat(),
        "status": "complete",
        "owner": None,
        "model": "offline-echo",
    }
    client = redis.Redis.from_url(stack.settings.redis_url)
    try:
        with client.pipeline(transaction=True) as pipe:
            outbox.add_commands(pipe, stack.settings, [turn], now=time.time() if due is None else due)
            pipe.execute()
    finally:
        client.close()
    return turn


def assert_round_trip(stack: Stack) -> None:
    """A turn answered by /run reaches /history through the workers, its save task reports SUCCESS, /health is 200."""
    session = f"round-trip-{uuid.uuid4()}"
    with stack.http() as client:
        run = client.post("/run", json={"user_input": "hello", "session_id": session})
        assert run.status_code == 200, run.text

        def stored() -> bool:
            page = client.get("/history", params={"session_id": session})
            assert page.status_code == 200, page.text
            return [t["turn_id"] for t in page.json()["history"]] == [run.json()["turn_id"]]

        wait_until(stored, 60, what="the turn to reach history")
        assert client.get(f"/task/{run.json()['task_id']}").json()["status"] == "SUCCESS"
        health = client.get("/health")
    assert health.status_code == 200, health.text
