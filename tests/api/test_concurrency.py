"""Many turns in flight at once in one API process: each waits for the model without failing the others."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import make_stack
from tests.utils.conversations import post_turns_at_once
from tests.utils.processes import wait_until
from tests.utils.services import RedisTarget
from tests.utils.stack import Stack, running

IN_FLIGHT = 160  # more than redis-py's default pool of 100 connections, which used to turn the excess into 503s


@pytest.fixture(scope="module")
def slow_model_stack(sqlite_url: str, redis_target: RedisTarget, log_dir: Path) -> Iterator[Stack]:
    stack = make_stack("concurrent", redis_target, sqlite_url, log_dir, OFFLINE_LATENCY_MS="500")
    with running(stack) as live:
        yield live


def test_many_turns_waiting_on_the_model_at_once_are_all_answered_and_stored(slow_model_stack: Stack) -> None:
    session = f"concurrent-{uuid.uuid4()}"
    responses = post_turns_at_once(slow_model_stack.api_url, session, IN_FLIGHT)

    failures = [(response.status_code, response.text[:200]) for response in responses if response.status_code != 200]
    assert failures == []
    answered = {response.json()["turn_id"] for response in responses}
    assert len(answered) == IN_FLIGHT
    wait_until(
        lambda: len(slow_model_stack.stored_turns(session)) == IN_FLIGHT, 120, interval=0.5, what="every turn stored"
    )
    assert {item["turn_id"] for item in slow_model_stack.stored_turns(session)} == answered
