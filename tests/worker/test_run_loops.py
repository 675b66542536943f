"""Background runs keep their event loops, model providers and Redis clients between runs: model connections are
reused, each run still logs under its own request id, a connection the model dropped while idle is not used again,
a run stopped by its time limit leaves nothing running on its loop, and a stopping worker closes them all. (Eight
runs at once, eight loops: tests/api/test_runs.py.)"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_stack
from tests.utils.conversations import wait_for_state
from tests.utils.keep_alive_model import KeepAliveModel, keep_alive_model
from tests.utils.processes import Process, wait_until
from tests.utils.services import RedisTarget, running_private_redis
from tests.utils.stack import Stack, running


@pytest.fixture(scope="module")
def model() -> Iterator[KeepAliveModel]:
    with keep_alive_model() as served:
        yield served


@pytest.fixture(scope="module")
def runs_stack(model: KeepAliveModel, sqlite_url: str, redis_target: RedisTarget, log_dir: Path) -> Iterator[Stack]:
    """A worker with one pool thread, so that every run goes through the same loop."""
    stack = make_stack(
        "run-loops",
        redis_target,
        sqlite_url,
        log_dir,
        **model.env(),
        LLM_MAX_RETRIES="2",
        LLM_RETRY_MIN_SECONDS="0.01",
        LLM_RETRY_MAX_SECONDS="0.02",
    )
    with running(stack, worker_args=("-P", "threads", "-c", "1")) as live:
        yield live


def worker_of(stack: Stack) -> Process:
    return next(process for process in stack.processes if process.name.endswith("-worker"))


def run_to_end(stack: Stack, user_input: str, request_id: str | None = None) -> dict[str, Any]:
    headers = {"X-Request-ID": request_id} if request_id else {}
    with stack.http() as client:
        queued = client.post("/runs", json={"user_input": user_input}, headers=headers)
    assert queued.status_code == 202, queued.text
    status = wait_for_state(stack, queued.json()["task_id"], "succeeded")
    assert status["result"]["answer"] == f"echo: {user_input}"
    return status


def test_runs_one_after_another_share_one_model_connection(model: KeepAliveModel, runs_stack: Stack) -> None:
    model.peers.clear()
    for n in range(3):
        run_to_end(runs_stack, f"shared connection {n}")

    assert len(model.peers) == 3
    assert len(set(model.peers)) == 1  # one connection: a new provider per run opened one each


def test_each_run_logs_under_its_own_request_id(model: KeepAliveModel, runs_stack: Stack) -> None:
    first, second = f"req-{uuid.uuid4().hex[:12]}", f"req-{uuid.uuid4().hex[:12]}"
    model.fail_first.add("retried once")
    worker = worker_of(runs_stack)
    logged_before = len(worker.log())

    run_to_end(runs_stack, "answered at once", first)
    run_to_end(runs_stack, "retried once", second)

    lines = worker.log()[logged_before:].splitlines()
    [retry] = [line for line in lines if "model attempt 1 of 3 failed: model endpoint returned HTTP 503" in line]
    assert f"[{second}]" in retry  # not the loop's first run's id


def test_a_connection_the_model_dropped_while_idle_is_not_used_again(model: KeepAliveModel, runs_stack: Stack) -> None:
    worker = worker_of(runs_stack)
    logged_before = len(worker.log())
    model.peers.clear()
    model.drop_idle = True
    try:
        for n in range(3):
            run_to_end(runs_stack, f"after a dropped connection {n}")
    finally:
        model.drop_idle = False

    assert len(set(model.peers)) == 3  # a new connection each time, and no request lost on a dead one
    assert "retrying in" not in worker.log()[logged_before:]


def test_a_redis_restart_between_runs_fails_no_run(sqlite_url: str, log_dir: Path) -> None:
    # The offline model takes a second, so the run looks at its cancel flag (in Redis) several times meanwhile.
    with running_private_redis(appendonly=True) as server:
        target = RedisTarget("127.0.0.1", server.port, server)
        stack = make_stack("run-loops-redis", target, sqlite_url, log_dir, OFFLINE_LATENCY_MS="1000")
        with running(stack, worker_args=("-P", "threads", "-c", "1")) as live:
            assert queue_and_finish(live, "before the restart")["state"] == "succeeded"
            server.kill()
            time.sleep(1)
            server.start()
            assert queue_and_finish(live, "after the restart")["state"] == "succeeded"


def queue_and_finish(stack: Stack, user_input: str) -> dict[str, Any]:
    """Queue a run (once the API takes it) and wait until it ends; its last status."""
    queued: dict[str, Any] = {}

    def accepted() -> bool:
        with stack.http() as client:
            response = client.post("/runs", json={"user_input": user_input})
        queued.update(response.json())
        return response.status_code == 202

    wait_until(accepted, 60, interval=0.5, what="the API to take a run")
    return wait_for_state(stack, queued["task_id"], "succeeded", "failed")


def test_a_run_past_its_time_limit_leaves_nothing_running_on_its_loop(
    model: KeepAliveModel, sqlite_url: str, redis_target: RedisTarget, log_dir: Path
) -> None:
    # One prefork pool process: Celery's soft time limit raises inside the run's loop, and the same process (so the
    # same loop) takes the next run. A first run loads the workflow, which can take longer than the limit on a
    # busy machine.
    stack = make_stack(
        "run-loops-limit",
        redis_target,
        sqlite_url,
        log_dir,
        **model.env(),
        TASK_SOFT_TIME_LIMIT="2",
        TASK_TIME_LIMIT="120",
    )
    model.hold["past the time limit"] = 90
    abandoned_before = model.abandoned
    with running(stack, worker_args=("-P", "prefork", "-c", "1")) as live:
        run_to_end(live, "before the time limit")
        status = queue_and_finish(live, "past the time limit")
        assert status["state"] == "failed"
        assert status["error"] == "RunFailed: the run did not finish within its time limit of 2 s", status
        # The model call the limit interrupted is given up there and then (its connection closed), not left
        # pending on the loop, where the next run would resume it.
        wait_until(lambda: model.abandoned > abandoned_before, 45, what="the interrupted model call to be given up")
        run_to_end(live, "after the time limit")


def test_a_stopping_worker_closes_its_loops_and_model_connections(runs_stack: Stack) -> None:
    # Last in this module: it stops the module's worker.
    run_to_end(runs_stack, "one more before the stop")
    worker = worker_of(runs_stack)
    worker.stop()

    log = worker.log()
    assert "closed 1 background-run loop(s) and their model connections" in log
    assert "Unclosed" not in log
