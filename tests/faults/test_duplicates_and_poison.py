"""Guarantees 4 and 5: duplicate deliveries store one row; a save that can never succeed fails visibly, alone."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import redis

from tests.conftest import make_stack
from tests.utils.processes import free_port, wait_until
from tests.utils.services import RedisTarget
from tests.utils.stack import Stack, running

pytestmark = pytest.mark.faults

SAVE = "celery_tasks.save_conversation_task"


def test_the_same_turn_delivered_many_times_in_one_batch_is_stored_once(sqlite_stack: Stack) -> None:
    session, turn_id = f"dups-{uuid.uuid4()}", str(uuid.uuid4())
    task = sqlite_stack.task(SAVE)
    results = [task.apply_async(("q", "a", session), {"turn_id": turn_id}) for _ in range(5)]
    # The same message redelivered: same task id, no turn id (the seed's call).
    redelivered = str(uuid.uuid4())
    results += [task.apply_async(("q2", "a2", session), task_id=redelivered) for _ in range(3)]
    outcomes = [result.get(timeout=30) for result in results]
    assert {outcome["turn_id"] for outcome in outcomes} == {turn_id, redelivered}
    assert sorted(t["turn_id"] for t in sqlite_stack.stored_turns(session)) == sorted({turn_id, redelivered})


def _dead_letters(stack: Stack) -> list[dict[str, object]]:
    client = redis.Redis(host=stack.redis_host, port=stack.redis_port)
    try:
        raw = client.lrange(stack.settings.redis_key("dead-letters", "saves"), 0, -1)
    finally:
        client.close()
    return [json.loads(item) for item in raw]


def test_a_poison_save_fails_visibly_without_blocking_the_others(
    postgres_url: str, redis_target: RedisTarget, log_dir: Path
) -> None:
    session = f"poison-{uuid.uuid4()}"
    with running(make_stack("poison", redis_target, postgres_url, log_dir), api=False) as stack:
        task = stack.task(SAVE)
        good = [task.apply_async((f"q{i}", "a", session)) for i in range(20)]
        too_long = task.apply_async(("q", "a", "s" * 300))  # the database refuses a 300-character session id
        bad_id = task.apply_async(("q", "a", session), {"turn_id": "not-a-uuid"})
        wrong_type = task.apply_async((["not", "text"], "a", session))
        good += [task.apply_async((f"later{i}", "a", session)) for i in range(20)]
        assert all(result.get(timeout=60)["stored"] for result in good)
        for poison in (too_long, bad_id, wrong_type):
            with pytest.raises(Exception, match=r"\w+: .+"):
                poison.get(timeout=60)
            assert poison.state == "FAILURE"
        assert len(stack.stored_turns(session)) == 40
        dead = {entry["task_id"] for entry in _dead_letters(stack)}
    assert dead == {too_long.id, bad_id.id, wrong_type.id}


def test_a_save_that_keeps_failing_ends_failed_after_its_retry_budget(
    sqlite_url: str, redis_target: RedisTarget, log_dir: Path
) -> None:
    unreachable = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none?connect_timeout=1"
    stack = make_stack("budget", redis_target, unreachable, log_dir, SAVE_MAX_RETRIES="2")
    try:
        stack.start_worker("-c", "1")
        result = stack.task(SAVE).apply_async(("q", "a", "budget"))
        wait_until(lambda: result.state == "FAILURE", 60, interval=0.5, what="the retry budget to run out")
        dead = _dead_letters(stack)
    finally:
        stack.stop()
    assert [entry["task_id"] for entry in dead] == [result.id]
    assert "after 2 retries" in str(dead[0]["error"])
