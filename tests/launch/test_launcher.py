"""`python -m convoflow.launcher`: the whole stack from one command on an embedded broker; Ctrl-C leaves nothing."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.utils.processes import (
    Process,
    free_port,
    interrupt,
    pids_with_env,
    port_open,
    sweep,
    wait_until,
)

FLOWER_LOGIN = ("admin", "s3cret-flower")


@dataclass
class Launched:
    process: Process
    marker: str
    data_dir: Path
    redis_port: int
    api_url: str
    flower_url: str


def launcher_env(data_dir: Path, marker: str, redis_port: int, api_port: int, flower_port: int) -> dict[str, str]:
    return {
        # Nothing listens on this port, so the launcher has to start its own broker there.
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": str(redis_port),
        "REDIS_PASSWORD": "",
        "REDIS_KEY_PREFIX": marker,  # also how the test finds every process the launcher started
        "CELERY_BROKER_URL": "",
        "CELERY_RESULT_BACKEND": "",
        "EMBEDDED_BROKER": "auto",
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": f"sqlite:///{data_dir}/convoflow.db",
        "API_PORT": str(api_port),
        "FLOWER_PORT": str(flower_port),
        "FLOWER_BASIC_AUTH": ":".join(FLOWER_LOGIN),
        "LLM_PROVIDER": "offline",
        "ENVIRONMENT": "test",
    }


def _ready(launched: Process, url: str) -> bool:
    """The launcher said it is ready (it does once /health answered 200), and /health says so too."""
    if not launched.alive():
        raise RuntimeError(f"the launcher exited early:\n{launched.log()}")
    if "ready after" not in launched.log():
        return False
    return httpx.get(f"{url}/health", timeout=5).status_code == 200


@pytest.fixture(scope="module")
def launched(tmp_path_factory: pytest.TempPathFactory, log_dir: Path) -> Iterator[Launched]:
    data_dir = tmp_path_factory.mktemp("launcher-data")
    marker = f"cfl{uuid.uuid4().hex[:10]}:"
    redis_port, api_port, flower_port = free_port(), free_port(), free_port()
    env = launcher_env(data_dir, marker, redis_port, api_port, flower_port)
    process = Process("launcher", [sys.executable, "-m", "convoflow.launcher", "--concurrency", "1"], env, log_dir)
    api_url = f"http://127.0.0.1:{api_port}"
    try:
        wait_until(lambda: _ready(process, api_url), 120, interval=0.5, what="the launched stack to be ready")
        yield Launched(process, marker, data_dir, redis_port, api_url, f"http://127.0.0.1:{flower_port}")
    finally:
        interrupt(process)
        process.kill()
        sweep(marker)


def test_launcher_starts_an_embedded_valkey_with_aof_when_no_redis_answers(launched: Launched) -> None:
    log = launched.process.log()
    assert "broker: embedded Valkey" in log
    assert f"127.0.0.1:{launched.redis_port}" in log
    assert (launched.data_dir / "valkey" / "appendonlydir").is_dir()


def test_launcher_prints_the_api_docs_and_flower_urls(launched: Launched) -> None:
    log = launched.process.log()
    api_port = launched.api_url.rsplit(":", 1)[1]
    flower_port = launched.flower_url.rsplit(":", 1)[1]
    assert f"http://localhost:{api_port}/docs" in log
    assert f"Flower: http://localhost:{flower_port} (basic auth for {FLOWER_LOGIN[0]})" in log
    assert FLOWER_LOGIN[1] not in log


def test_run_round_trip_reaches_history_through_the_launched_stack(launched: Launched) -> None:
    session = f"launch-{uuid.uuid4()}"
    with httpx.Client(base_url=launched.api_url, timeout=30) as client:
        answer = client.post("/run", json={"user_input": "Hello", "session_id": session})
        assert answer.status_code == 200, answer.text
        turn_id = answer.json()["turn_id"]
        task_id = answer.json()["task_id"]
        wait_until(lambda: client.get(f"/task/{task_id}").json()["status"] == "SUCCESS", 30, what="the save to finish")
        history = client.get("/history", params={"session_id": session}).json()
    assert [turn["turn_id"] for turn in history["history"]] == [turn_id]


def test_flower_asks_for_the_configured_login_and_shows_the_database_queue(launched: Launched) -> None:
    with httpx.Client(base_url=launched.flower_url, timeout=10) as client:
        assert client.get("/").status_code == 401
        assert client.get("/", auth=("admin", "wrong")).status_code == 401

        def broker_page_lists_database_queue() -> bool:
            page = client.get("/broker", auth=FLOWER_LOGIN)
            return page.status_code == 200 and ">database<" in page.text.replace(" ", "").replace("\n", "")

        wait_until(broker_page_lists_database_queue, 30, interval=1, what="Flower to list the database queue")
        workers = client.get("/workers", auth=FLOWER_LOGIN)
    assert workers.status_code == 200


def test_sigint_stops_every_service_and_leaves_no_process(launched: Launched) -> None:
    started = pids_with_env(launched.marker)
    # Valkey, started from a file of its own, may not carry the marker; the worker's thread pool is one process.
    assert len(started) >= 5, "expected the launcher, API, worker, Beat and Flower"

    code = interrupt(launched.process)

    assert code == 0, launched.process.log()[-3000:]
    wait_until(lambda: not pids_with_env(launched.marker), 10, what="every launched process to be gone")
    assert not port_open("127.0.0.1", launched.redis_port)
    log = launched.process.log()
    for name in ("worker", "beat", "flower", "api", "valkey"):
        assert f"{name} stopped" in log
    assert "exited unexpectedly" not in log


def test_launcher_refuses_to_start_when_no_redis_answers_and_embedded_broker_is_never(
    tmp_path: Path, log_dir: Path
) -> None:
    marker = f"cfl{uuid.uuid4().hex[:10]}:"
    redis_port = free_port()
    env = {
        **launcher_env(tmp_path, marker, redis_port, free_port(), free_port()),
        "EMBEDDED_BROKER": "never",
    }
    process = Process("launcher-never", [sys.executable, "-m", "convoflow.launcher"], env, log_dir)
    try:
        code = process.popen.wait(timeout=60)
    finally:
        process.kill()
        sweep(marker)
    assert code == 1
    assert f"no Redis answers at 127.0.0.1:{redis_port} and EMBEDDED_BROKER=never" in process.log()
