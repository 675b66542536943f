"""A background run whose worker dies is queued again and answered once; a live run renewing its lease is not."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import make_stack
from tests.utils.conversations import wait_for_state, wait_until_persisted
from tests.utils.processes import Process
from tests.utils.services import RedisTarget
from tests.utils.stack import Stack, running

pytestmark = pytest.mark.faults

REQUEUED = "queued again 1 background runs whose worker stopped"


@pytest.fixture
def slow_runs(postgres_url: str, redis_target: RedisTarget, log_dir: Path) -> Iterator[Stack]:
    """Runs take 3 s of model time; a lease lapses 1.5 s after its last renewal; the sweeper looks twice a second."""
    stack = make_stack(
        "run-recovery",
        redis_target,
        postgres_url,
        log_dir,
        OFFLINE_LATENCY_MS="3000",
        RUN_LEASE_SECONDS="1.5",
        OUTBOX_SWEEP_INTERVAL="0.5",
    )
    with running(stack, worker_args=("-c", "1")) as live:
        yield live


def _worker(stack: Stack, name: str) -> Process:
    return next(process for process in stack.processes if process.name.endswith(name))


def _queue_run(stack: Stack, session: str) -> dict[str, str]:
    with stack.http() as client:
        response = client.post("/runs", json={"user_input": "answer me slowly", "session_id": session})
    assert response.status_code == 202, response.text
    queued: dict[str, str] = response.json()
    return queued


def test_a_live_run_renews_its_lease_and_is_not_queued_again(slow_runs: Stack) -> None:
    session = f"live-run-{uuid.uuid4()}"
    queued = _queue_run(slow_runs, session)

    status = wait_for_state(slow_runs, queued["task_id"], "succeeded", timeout=60)

    assert status["result"]["turn_id"] == queued["turn_id"]
    [turn] = wait_until_persisted(slow_runs, session, 1)
    assert turn["turn_id"] == queued["turn_id"]
    # Twice as long as its lease, yet renewed all along: the sweeper never took it for abandoned.
    assert "background runs whose worker stopped" not in _worker(slow_runs, "run-recovery-worker").log()


def test_a_run_whose_worker_is_killed_is_answered_by_another_and_saved_once(slow_runs: Stack) -> None:
    session = f"orphan-run-{uuid.uuid4()}"
    queued = _queue_run(slow_runs, session)
    wait_for_state(slow_runs, queued["task_id"], "started", timeout=60)

    _worker(slow_runs, "run-recovery-worker").kill()  # the worker and its pool child, mid-model-call
    second = slow_runs.start_worker("-c", "1", name="second-worker")

    status = wait_for_state(slow_runs, queued["task_id"], "succeeded", timeout=90)
    assert status["result"]["turn_id"] == queued["turn_id"]
    assert "answer me slowly" in status["result"]["answer"]
    [turn] = wait_until_persisted(slow_runs, session, 1)
    assert turn["turn_id"] == queued["turn_id"]
    assert REQUEUED in second.log()
