"""Background runs through the real API: queued -> started -> succeeded, cancelling, and the worker pools."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import make_stack
from tests.utils.conversations import history, task_status, wait_for_state, wait_until_persisted
from tests.utils.processes import wait_until
from tests.utils.services import RedisTarget
from tests.utils.stack import Stack


def test_a_run_is_accepted_with_202_and_succeeds_with_the_answer(sqlite_stack: Stack) -> None:
    session = f"bg-{uuid.uuid4()}"
    with sqlite_stack.http() as client:
        response = client.post("/runs", json={"user_input": "in the background", "session_id": session})
    assert response.status_code == 202, response.text
    queued = response.json()
    assert set(queued) == {"task_id", "session_id", "turn_id", "status"}
    assert (queued["session_id"], queued["status"]) == (session, "queued")

    status = wait_for_state(sqlite_stack, queued["task_id"], "succeeded")
    assert status["status"] == "SUCCESS" and status["error"] is None
    result = status["result"]
    assert "in the background" in result["answer"]
    assert (result["session_id"], result["turn_id"]) == (session, queued["turn_id"])
    [turn] = wait_until_persisted(sqlite_stack, session, 1)
    assert (turn["turn_id"], turn["ai_response"]) == (queued["turn_id"], result["answer"])
    assert wait_for_state(sqlite_stack, result["save_task_id"], "succeeded")["result"]["stored"] is True


def test_a_run_without_session_id_starts_a_new_session(sqlite_stack: Stack) -> None:
    with sqlite_stack.http() as client:
        queued = client.post("/runs", json={"user_input": "hi"}).json()
    assert uuid.UUID(queued["session_id"])


@pytest.mark.parametrize("body", [{"user_input": " "}, {"user_input": "hi", "extra": 1}, {"session_id": "x"}])
def test_runs_rejects_invalid_bodies_with_422(sqlite_stack: Stack, body: dict[str, object]) -> None:
    with sqlite_stack.http() as client:
        response = client.post("/runs", json=body)
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"


def test_cancel_answers_404_for_a_task_it_never_issued(sqlite_stack: Stack) -> None:
    with sqlite_stack.http() as client:
        response = client.post(f"/task/{uuid.uuid4()}/cancel")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_cancel_refuses_a_save_and_a_finished_run_with_409(sqlite_stack: Stack) -> None:
    with sqlite_stack.http() as client:
        save_task = client.post("/run", json={"user_input": "keep me"}).json()["task_id"]
        run_task = client.post("/runs", json={"user_input": "finish me"}).json()["task_id"]
        wait_for_state(sqlite_stack, run_task, "succeeded")
        refused_save = client.post(f"/task/{save_task}/cancel")
        refused_run = client.post(f"/task/{run_task}/cancel")
        bad_id = client.post("/task/not-a-uuid/cancel")
    assert refused_save.status_code == 409 and "only background runs" in refused_save.json()["message"]
    assert refused_run.status_code == 409 and refused_run.json()["state"] == "succeeded"
    assert bad_id.status_code == 422


@pytest.fixture
def no_workflow_worker(sqlite_url: str, redis_target: RedisTarget, log_dir: Path) -> Iterator[Stack]:
    """API and a `database` worker, but nobody on `workflow` yet: runs stay queued."""
    stack = make_stack("queued-runs", redis_target, sqlite_url, log_dir)
    try:
        stack.start_worker("-Q", "database", "-c", "1", "-n", "database@%h", name="database-worker")
        stack.call("celery_tasks.init_database_task", timeout=60)
        stack.start_api()
        yield stack
    finally:
        stack.stop()


def test_a_queued_run_is_cancelled_at_once_and_never_runs_later(no_workflow_worker: Stack) -> None:
    stack = no_workflow_worker
    session = f"cancel-queued-{uuid.uuid4()}"
    with stack.http() as client:
        cancelled = client.post("/runs", json={"user_input": "never", "session_id": session}).json()
        kept = client.post("/runs", json={"user_input": "later", "session_id": f"{session}-kept"}).json()
        assert task_status(stack, cancelled["task_id"])["state"] == "queued"
        response = client.post(f"/task/{cancelled['task_id']}/cancel")
        again = client.post(f"/task/{cancelled['task_id']}/cancel")
    assert response.status_code == 202, response.text
    assert response.json() == {"task_id": cancelled["task_id"], "state": "cancelled"}
    assert again.status_code == 202 and again.json()["state"] == "cancelled"
    status = task_status(stack, cancelled["task_id"])
    assert (status["status"], status["state"]) == ("REVOKED", "cancelled")

    # A workflow worker that starts now never heard the revoke broadcast; the flag still stops the run.
    stack.start_worker(
        "-Q", "workflow", "-P", "threads", "-c", "2", "--prefetch-multiplier", "1", "-n", "workflow@%h",
        name="late-workflow-worker",
    )  # fmt: skip
    wait_for_state(stack, kept["task_id"], "succeeded")
    assert task_status(stack, cancelled["task_id"])["state"] == "cancelled"
    assert history(stack, session_id=session)["count"] == 0


def test_a_running_run_is_cancelled_and_saves_nothing(split_pools_stack: Stack) -> None:
    stack = split_pools_stack
    session = f"cancel-running-{uuid.uuid4()}"
    with stack.http() as client:
        queued = client.post("/runs", json={"user_input": "take your time", "session_id": session}).json()
        wait_for_state(stack, queued["task_id"], "started")
        response = client.post(f"/task/{queued['task_id']}/cancel")
    assert response.status_code == 202, response.text
    assert response.json()["state"] in ("cancelling", "cancelled")
    status = wait_for_state(stack, queued["task_id"], "cancelled", "succeeded")
    assert (status["status"], status["state"]) == ("REVOKED", "cancelled")
    assert "cancelled by the client" in (status["error"] or "")
    assert history(stack, session_id=session)["count"] == 0


def test_the_thread_pool_worker_runs_eight_runs_at_once(split_pools_stack: Stack) -> None:
    stack = split_pools_stack
    with stack.http() as client:
        ids = [client.post("/runs", json={"user_input": f"run {index}"}).json()["task_id"] for index in range(8)]

    # Each run takes the slow model's seconds: all eight are in flight together only with eight threads.
    def all_in_flight() -> bool:
        return all(task_status(stack, task_id)["state"] in ("started", "succeeded") for task_id in ids)

    wait_until(all_in_flight, 30, interval=0.2, what="eight runs in flight")
    assert sum(task_status(stack, task_id)["state"] == "started" for task_id in ids) >= 2
    for task_id in ids:
        wait_for_state(stack, task_id, "succeeded")


def test_split_workers_each_consume_only_their_queue(split_pools_stack: Stack) -> None:
    replies = split_pools_stack.app.control.inspect(timeout=2).active_queues() or {}
    consumed = {name: {queue["name"] for queue in queues} for name, queues in replies.items()}
    assert sorted(consumed.values(), key=sorted) == [{"database"}, {"workflow"}]
