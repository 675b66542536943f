"""Flower, started as users start it (`celery -A celery_app flower`), asks for FLOWER_BASIC_AUTH credentials."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_stack
from tests.utils.processes import PROJECT_ROOT, VENV_BIN, Process, free_port, port_open, wait_until
from tests.utils.services import RedisTarget
from tests.utils.stack import Stack

USERS = {"ops": "f7#Qp2!xLr9@Vk3z", "oncall": "Zm4$Wd8^Hs1&Tb6y"}


@dataclass
class Flower:
    stack: Stack
    url: str
    process: Process | None = None

    def get(self, path: str, auth: tuple[str, str] | None = None) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", auth=auth, timeout=30)


@pytest.fixture(scope="module")
def flower(sqlite_url: str, redis_target: RedisTarget, log_dir: Path) -> Iterator[Flower]:
    basic_auth = ",".join(f"{user}:{password}" for user, password in USERS.items())
    stack = make_stack("flower", redis_target, sqlite_url, log_dir, FLOWER_BASIC_AUTH=basic_auth)
    try:
        process, url = stack.start_flower()
        yield Flower(stack, url, process)
    finally:
        stack.stop()


@pytest.mark.parametrize("path", ["/", "/workers", "/tasks", "/api/workers", "/api/tasks"])
def test_flower_refuses_requests_without_credentials(flower: Flower, path: str) -> None:
    response = flower.get(path)
    assert response.status_code == 401
    if not path.startswith("/api/"):  # the pages ask the browser for a login; the API only refuses
        assert response.headers["www-authenticate"].startswith("Basic")


@pytest.mark.parametrize("auth", [("ops", "wrong-password"), ("nobody", USERS["ops"]), ("oncall", USERS["ops"])])
def test_flower_refuses_wrong_credentials(flower: Flower, auth: tuple[str, str]) -> None:
    assert flower.get("/", auth=auth).status_code == 401


@pytest.mark.parametrize("user", sorted(USERS))
def test_flower_lets_every_configured_user_in(flower: Flower, user: str) -> None:
    assert flower.get("/", auth=(user, USERS[user])).status_code == 200
    assert flower.get("/api/workers", auth=(user, USERS[user])).status_code == 200


def test_flower_logs_no_password(flower: Flower) -> None:
    flower.get("/", auth=("ops", "a-wrong-guess"))
    assert flower.process is not None
    log = flower.process.log()
    assert "Visit me at" in log
    assert not any(password in log for password in [*USERS.values(), "a-wrong-guess"])


def test_flower_refuses_to_start_unprotected_in_production(redis_target: RedisTarget, sqlite_url: str) -> None:
    stack = make_stack("flower-prod", redis_target, sqlite_url, Path("."), ENVIRONMENT="production")
    completed = subprocess.run(
        [str(VENV_BIN / "celery"), "-A", "celery_app", "flower", f"--port={free_port()}", "--address=127.0.0.1"],
        cwd=PROJECT_ROOT,
        env={**stack.env, "PATH": str(VENV_BIN)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode != 0
    assert "FLOWER_BASIC_AUTH is not set" in completed.stderr


def test_flower_takes_its_credentials_from_dotenv_too(
    sqlite_url: str, redis_target: RedisTarget, log_dir: Path, tmp_path: Path
) -> None:
    # Flower itself only reads FLOWER_BASIC_AUTH from the environment; flowerconfig.py reads the settings.
    (tmp_path / ".env").write_text(f"FLOWER_BASIC_AUTH=ops:{USERS['ops']}\n")
    stack = make_stack("flower-dotenv", redis_target, sqlite_url, log_dir)
    port = free_port()
    process = Process(
        "flower-dotenv",
        [
            str(VENV_BIN / "celery"),
            "-A",
            "celery_app",
            "flower",
            f"--port={port}",
            "--address=127.0.0.1",
            f"--conf={PROJECT_ROOT / 'flowerconfig.py'}",
        ],
        {**stack.env, "PYTHONPATH": str(PROJECT_ROOT)},
        log_dir,
        cwd=tmp_path,
    )
    try:
        wait_until(lambda: port_open("127.0.0.1", port), 30, what="Flower to listen")
        flower = Flower(stack, f"http://127.0.0.1:{port}")
        wait_until(lambda: flower.get("/healthcheck").status_code == 200, 30, what="Flower to answer")
        assert flower.get("/").status_code == 401
        assert flower.get("/", auth=("ops", USERS["ops"])).status_code == 200
    finally:
        process.stop()
        stack.stop()
