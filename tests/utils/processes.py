"""Start and stop real child processes (workers, the API) with their output kept in a log file."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx

PROJECT_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.1, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")


class Process:
    """A child process in its own process group, so stopping it also stops its children."""

    def __init__(
        self, name: str, argv: list[str], env: Mapping[str, str], log_dir: Path, cwd: Path = PROJECT_ROOT
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}-{int(time.time() * 1000)}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            argv,
            cwd=cwd,
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def kill(self) -> None:
        """SIGKILL the process and all its children at once (no chance to clean up)."""
        self.signal_group(signal.SIGKILL)
        self.popen.wait(timeout=10)
        self._log.close()

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL whatever is left of the group."""
        if self.alive():
            self.signal_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=timeout)
        self.signal_group(signal.SIGKILL)
        try:
            self.popen.wait(timeout=10)
        finally:
            self._log.close()
        return self.popen.returncode


def start_worker(env: Mapping[str, str], log_dir: Path, *extra: str, name: str = "worker") -> Process:
    argv = [str(VENV_BIN / "celery"), "-A", "celery_app", "worker", "--loglevel=info", *extra]
    return Process(name, argv, env, log_dir)


def start_api(env: Mapping[str, str], log_dir: Path, port: int, name: str = "api") -> Process:
    process = Process(
        name, [sys.executable, "main.py"], {**env, "API_HOST": "127.0.0.1", "API_PORT": str(port)}, log_dir
    )

    def ready() -> bool:
        if not process.alive():
            raise RuntimeError(f"API exited early:\n{process.log()}")
        try:
            # 401: the API is up and wants a key (API_KEYS); uvicorn binds only after the app started.
            return httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1).status_code in (200, 401)
        except httpx.HTTPError:
            return False

    try:
        wait_until(ready, 90, what="the API to answer")
    except BaseException:
        process.stop()  # not yet known to any Stack: nobody else would ever stop it
        raise
    return process


def pids_with_env(marker: str) -> set[int]:
    """Live processes on this machine whose environment contains `marker` (a value unique to one test).

    A launcher's children, and their own children (a worker's pool), inherit its environment, so this
    finds every process a launched stack left behind, whichever process group or session it ended up in.
    """
    needle = marker.encode()
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()  # empty for a zombie: it is already dead
        except OSError:
            continue
        if needle in environ:
            found.add(int(entry.name))
    found.discard(os.getpid())
    return found


def kill_pids(pids: set[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def interrupt(process: Process, timeout: float = 60.0) -> int | None:
    """Ctrl-C a launcher as a terminal would (SIGINT to it alone) and wait; its exit code, None on a timeout."""
    if process.alive():
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGINT)
    try:
        return process.popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def sweep(marker: str) -> set[int]:
    """SIGKILL whatever still carries `marker` (so a failing test leaves nothing running); returns those pids."""
    leftovers = pids_with_env(marker)
    kill_pids(leftovers)
    return leftovers


def start_flower(env: Mapping[str, str], log_dir: Path, port: int, name: str = "flower") -> Process:
    """`celery -A celery_app flower`, as users run it, on 127.0.0.1:`port`; returns once it serves HTTP."""
    argv = [str(VENV_BIN / "celery"), "-A", "celery_app", "flower", f"--port={port}", "--address=127.0.0.1"]
    process = Process(name, argv, env, log_dir)

    def ready() -> bool:
        if not process.alive():
            raise RuntimeError(f"Flower exited early:\n{process.log()}")
        try:
            # /healthcheck is the one page Flower serves without authentication.
            return httpx.get(f"http://127.0.0.1:{port}/healthcheck", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, 30, what="Flower to answer")
    return process
