"""The workers' Prometheus exporter (WORKER_METRICS_PORT): outcomes of tasks run in pool processes, persisted turns."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from celery.exceptions import TimeoutError as CeleryTimeout

from tests.conftest import make_stack
from tests.utils.ops import Samples, scrape, value
from tests.utils.processes import free_port, wait_until
from tests.utils.services import RedisTarget
from tests.utils.stack import Stack, running

SAVE = "celery_tasks.save_conversation_task"


@pytest.fixture(scope="module")
def exporting_stack(sqlite_url: str, redis_target: RedisTarget, log_dir: Path) -> Iterator[Stack]:
    """A prefork worker with two pool processes and its exporter on a free port (no API)."""
    stack = make_stack("worker-metrics", redis_target, sqlite_url, log_dir, WORKER_METRICS_PORT=str(free_port()))
    with running(stack, api=False, worker_args=("-P", "prefork", "-c", "2")) as live:
        yield live


def _scrape(stack: Stack) -> Samples:
    return scrape(f"http://127.0.0.1:{stack.env['WORKER_METRICS_PORT']}/metrics")


def test_exporter_counts_successes_of_tasks_run_in_pool_processes(exporting_stack: Stack) -> None:
    before = _scrape(exporting_stack)
    session = f"wm-{uuid.uuid4()}"
    answered = (datetime.now(UTC) - timedelta(seconds=2)).isoformat()
    for i in range(4):
        exporting_stack.call(SAVE, f"q{i}", f"a{i}", session, turn_id=str(uuid.uuid4()), timestamp=answered)
    after = _scrape(exporting_stack)
    assert (
        value(after, "convoflow_tasks_total", task=SAVE, outcome="success")
        - value(before, "convoflow_tasks_total", task=SAVE, outcome="success")
        == 4
    )
    assert value(after, "convoflow_turns_persisted_total") - value(before, "convoflow_turns_persisted_total") == 4
    stored_count = value(after, "convoflow_answer_to_stored_seconds_count") - value(
        before, "convoflow_answer_to_stored_seconds_count"
    )
    assert stored_count == 4
    # Each turn was answered two seconds before the worker got it: the lag is measured from the turn's time.
    under_one_second = value(after, "convoflow_answer_to_stored_seconds_bucket", le="1.0") - value(
        before, "convoflow_answer_to_stored_seconds_bucket", le="1.0"
    )
    assert under_one_second == 0
    assert value(after, "convoflow_task_duration_seconds_count", task=SAVE) >= 4


def test_a_duplicate_delivery_is_a_success_but_not_a_second_persisted_turn(exporting_stack: Stack) -> None:
    turn_id = str(uuid.uuid4())
    exporting_stack.call(SAVE, "q", "a", f"dup-{uuid.uuid4()}", turn_id=turn_id)
    before = _scrape(exporting_stack)
    assert exporting_stack.call(SAVE, "q", "a", "ignored", turn_id=turn_id)["stored"] is False
    after = _scrape(exporting_stack)
    assert value(after, "convoflow_turns_persisted_total") == value(before, "convoflow_turns_persisted_total")
    assert value(after, "convoflow_tasks_total", task=SAVE, outcome="success") == 1 + value(
        before, "convoflow_tasks_total", task=SAVE, outcome="success"
    )


def test_exporter_counts_failures(exporting_stack: Stack) -> None:
    before = value(_scrape(exporting_stack), "convoflow_tasks_total", task=SAVE, outcome="failure")
    result = exporting_stack.task(SAVE).apply_async(args=("q", "a", "s"), kwargs={"turn_id": "not-a-uuid"})
    with pytest.raises(Exception, match="badly formed"):
        result.get(timeout=30)
    wait_until(
        lambda: value(_scrape(exporting_stack), "convoflow_tasks_total", task=SAVE, outcome="failure") == before + 1,
        30,
        what="the failure to be counted",
    )


def test_exporter_counts_retries_of_a_task_whose_database_is_down(
    redis_target: RedisTarget, log_dir: Path, run_id: str
) -> None:
    unreachable = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/cf_down_{run_id}"
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    stack = make_stack(
        "worker-metrics-db-down",
        redis_target,
        unreachable,
        log_dir,
        WORKER_METRICS_PORT=str(port),
        SAVE_MAX_RETRIES="1",
        SAVE_RETRY_BACKOFF_MAX="1",
    )
    try:
        stack.start_worker("-c", "1")
        result = stack.task(SAVE).apply_async(args=("q", "a", "s"), kwargs={"turn_id": str(uuid.uuid4())})
        with pytest.raises(Exception) as raised:
            result.get(timeout=60)
        assert not isinstance(raised.value, CeleryTimeout)

        def failure_counted() -> bool:
            return value(scrape(url), "convoflow_tasks_total", task=SAVE, outcome="failure") == 1

        # The failure signal fires just after the result is stored.
        wait_until(failure_counted, 30, what="the failure to be counted")
        samples = scrape(url)
    finally:
        stack.stop()
    assert value(samples, "convoflow_tasks_total", task=SAVE, outcome="retry") == 1
    assert value(samples, "convoflow_turns_persisted_total") == 0
