#!/usr/bin/env python3
"""Bootstrap for a fresh machine with only Python: `python3 dev.py up` runs the stack, `python3 dev.py test` the tests.

Standard library only: it creates `.venv/` in the repo root, installs the project into it when
`pyproject.toml` changed, then hands over to the real command inside the virtual environment.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import venv
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".convoflow-installed"
FROM_TERMINAL = tuple(getattr(signal, name) for name in ("SIGINT", "SIGHUP") if hasattr(signal, name))

USAGE = """usage: python3 dev.py COMMAND [ARGS...]

  up      set up .venv, migrate the database and run API + worker + beat + Flower (Ctrl-C stops all)
  test    set up .venv with the test extras and run ruff, mypy and the test suite (extra args go to pytest)
  lint    ruff and mypy only
  bench   run the benchmark (needs the machine's PostgreSQL and Redis, and wrk)
  setup   only create/refresh .venv
"""


def _requirements_digest(extras: str) -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()


def ensure_venv(extras: str = "dev") -> None:
    """Create .venv and install the project (editable, with `extras`) unless it is already current."""
    if not PYTHON.exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = _requirements_digest(extras)
    if STAMP.exists() and STAMP.read_text().strip() == digest:
        return
    print("installing convoflow and its dependencies into .venv (first run takes a minute)", flush=True)
    pip = [str(PYTHON), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--upgrade", "pip"], check=True)
    target = f".[{extras}]" if extras else "."
    subprocess.run([*pip, "install", "-e", target], check=True, cwd=ROOT)
    STAMP.write_text(digest)


def run(argv: list[str]) -> int:
    """Run `argv` and return its exit code; Ctrl-C is the child's to handle (the launcher stops its services)."""
    with subprocess.Popen(argv, cwd=ROOT) as process:
        # The terminal sends Ctrl-C (and SIGHUP) to the child as well: ignoring them here lets the child shut
        # down in order instead of being killed half-way. A SIGTERM sent to this process alone is passed on.
        previous = {sig: signal.getsignal(sig) for sig in (*FROM_TERMINAL, signal.SIGTERM)}
        for sig in FROM_TERMINAL:
            signal.signal(sig, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, lambda signum, _frame: process.send_signal(signum))
        try:
            return process.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def command_test(args: list[str]) -> int:
    ensure_venv("dev")
    lint = command_lint([])
    if lint != 0:
        return lint
    return run([str(PYTHON), "-m", "pytest", *args])


def command_lint(_: list[str]) -> int:
    ensure_venv("dev")
    for argv in (
        [str(PYTHON), "-m", "ruff", "check", "."],
        [str(PYTHON), "-m", "ruff", "format", "--check", "."],
        [str(PYTHON), "-m", "mypy"],
    ):
        code = run(argv)
        if code != 0:
            return code
    return 0


def command_up(args: list[str]) -> int:
    ensure_venv("dev")
    return run([str(PYTHON), "-m", "convoflow.launcher", *args])


def command_setup(_: list[str]) -> int:
    ensure_venv("dev")
    return 0


def command_bench(args: list[str]) -> int:
    ensure_venv("dev")
    return run([str(PYTHON), "-m", "bench", *args])


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if len(sys.argv) >= 2 else 2
    command, args = sys.argv[1], sys.argv[2:]
    commands: dict[str, Callable[[list[str]], int]] = {
        "up": command_up,
        "test": command_test,
        "lint": command_lint,
        "bench": command_bench,
        "setup": command_setup,
    }
    if command not in commands:
        print(USAGE, file=sys.stderr)
        return 2
    try:
        return commands[command](args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
