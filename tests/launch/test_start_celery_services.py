"""`python start_celery_services.py`: worker, Beat and Flower against the machine's Redis; Ctrl-C leaves nothing."""

from __future__ import annotations

import os
import re
import signal
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.utils.processes import Process, free_port, interrupt, pids_with_env, sweep, wait_until
from tests.utils.services import RedisTarget, delete_prefixed_keys
from tests.utils.stack import Stack


def started_pid(log: str, name: str) -> int:
    """The pid the supervisor reported for `name` ("started beat (pid 123): ...")."""
    found = re.search(rf"started {name} \(pid (\d+)\)", log)
    assert found, log
    return int(found.group(1))


@pytest.fixture(scope="module")
def celery_services(
    redis_target: RedisTarget, tmp_path_factory: pytest.TempPathFactory, log_dir: Path
) -> Iterator[tuple[Stack, Process, int]]:
    data_dir = tmp_path_factory.mktemp("services-data")
    flower_port = free_port()
    stack = Stack(
        name="start-celery-services",
        redis_host=redis_target.host,
        redis_port=redis_target.port,
        database_url=f"sqlite:///{data_dir}/convoflow.db",
        log_dir=log_dir,
        extra_env={"DATA_DIR": str(data_dir), "FLOWER_PORT": str(flower_port), "FLOWER_BASIC_AUTH": ""},
    )
    argv = [sys.executable, "start_celery_services.py", "--concurrency", "1", "--queues", "database"]
    process = Process("start-celery-services", argv, stack.env, log_dir)
    try:
        stack.wait_for_worker(process)
        yield stack, process, flower_port
    finally:
        interrupt(process)
        process.kill()
        sweep(stack.prefix)
        stack.stop()


def test_the_script_migrates_the_database_and_its_worker_stores_a_turn(
    celery_services: tuple[Stack, Process, int],
) -> None:
    stack, process, _ = celery_services
    assert "(migrated from an empty database)" in process.log()
    session = f"scs-{uuid.uuid4()}"
    saved = stack.call("celery_tasks.save_conversation_task", "Hello", "Hi there", session)
    assert saved["success"] is True
    assert [turn["user_input"] for turn in stack.stored_turns(session)] == ["Hello"]


def test_flower_answers_and_says_it_is_open_on_localhost(celery_services: tuple[Stack, Process, int]) -> None:
    _, process, flower_port = celery_services

    def answers() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{flower_port}/", timeout=20).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(answers, 90, interval=0.5, what="Flower")
    assert "open, no login, listening on localhost only" in process.log()


def test_sigint_stops_worker_beat_and_flower_and_leaves_no_process(
    celery_services: tuple[Stack, Process, int],
) -> None:
    stack, process, _ = celery_services
    assert len(pids_with_env(stack.prefix)) >= 4, "expected the script, worker (+ pool), Beat and Flower"

    assert interrupt(process) == 0, process.log()[-3000:]

    wait_until(lambda: not pids_with_env(stack.prefix), 10, what="every started process to be gone")
    log = process.log()
    assert all(f"{name} stopped" in log for name in ("worker", "beat", "flower"))


def test_a_service_that_dies_is_reported_and_the_rest_are_stopped(
    redis_target: RedisTarget, tmp_path: Path, log_dir: Path
) -> None:
    marker = f"cfs{uuid.uuid4().hex[:10]}:"
    env = {
        "REDIS_HOST": redis_target.host,
        "REDIS_PORT": str(redis_target.port),
        "REDIS_KEY_PREFIX": marker,
        "DATA_DIR": str(tmp_path),
        "FLOWER_PORT": str(free_port()),
    }
    process = Process("scs-dies", [sys.executable, "start_celery_services.py", "--only", "beat,flower"], env, log_dir)
    try:
        wait_until(lambda: "beat: Starting..." in process.log(), 60, what="Beat to start")
        [beat_pid] = [
            int(line.split("(pid ")[1].split(")")[0]) for line in process.log().splitlines() if "started beat" in line
        ]
        os.kill(beat_pid, signal.SIGKILL)
        code = process.popen.wait(timeout=60)
    finally:
        process.kill()
        leftovers = sweep(marker)
        delete_prefixed_keys(redis_target.host, redis_target.port, marker)
    assert code == 1
    assert f"beat (pid {beat_pid}) exited unexpectedly (signal SIGKILL)" in process.log()
    assert "flower stopped" in process.log()
    assert not leftovers


def test_unreachable_redis_is_one_clear_error_and_exit_code_1(log_dir: Path) -> None:
    port = free_port()
    env = {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(port), "CELERY_BROKER_URL": "", "CELERY_RESULT_BACKEND": ""}
    process = Process("scs-unreachable", [sys.executable, "start_celery_services.py"], env, log_dir)
    try:
        code = process.popen.wait(timeout=60)
    finally:
        process.kill()
    lines = process.log().strip().splitlines()
    assert code == 1
    assert len(lines) == 1
    assert f"the broker at 127.0.0.1:{port} does not answer" in lines[0]
