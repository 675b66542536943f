"""Child-process supervision: labelled output, one orderly stop for all, and a loud report when a child dies."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, TextIO

STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)
POLL_SECONDS = 0.1


@dataclass(frozen=True)
class ChildSpec:
    """One service to run: its label, its command line and what it needs beyond the launcher's environment."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    # Lower tiers start first and stop last: the broker is tier 0, so the worker can still hand back its tasks.
    tier: int = 1
    stdin: bytes | None = None

    def with_env(self, extra: Mapping[str, str]) -> ChildSpec:
        return replace(self, env={**self.env, **extra})


class Child:
    """A running child process and the thread copying its output."""

    def __init__(self, spec: ChildSpec, popen: subprocess.Popen[bytes], pump: threading.Thread) -> None:
        self.spec = spec
        self.popen = popen
        self.pump = pump

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def running(self) -> bool:
        return self.popen.poll() is None


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


class Supervisor:
    """Starts children in their own process groups and stops them all, in tiers, when asked or when one dies."""

    def __init__(self, cwd: Path, name: str = "launcher", out: TextIO | None = None, stop_timeout: float = 30.0):
        self.cwd = cwd
        self.name = name
        self.out = out or sys.stdout
        self.stop_timeout = stop_timeout
        self.children: list[Child] = []
        self.stop_requested = threading.Event()
        self.received_signal: signal.Signals | None = None
        self._hurry = threading.Event()
        self._write_lock = threading.Lock()
        self._label_width = len(name)

    # --- output -----------------------------------------------------------------------------
    def say(self, message: str) -> None:
        """A line of the supervisor's own, labelled with its name."""
        self._emit(self.name, message)

    def _emit(self, label: str, line: str) -> None:
        with self._write_lock, contextlib.suppress(OSError, ValueError):
            self.out.write(f"{label:<{self._label_width}} | {line}\n")
            self.out.flush()

    def _pump(self, label: str, stream: IO[bytes]) -> None:
        with stream:
            for raw in iter(stream.readline, b""):
                self._emit(label, raw.decode(errors="replace").rstrip("\r\n"))

    # --- signals ------------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        """SIGINT/SIGTERM/SIGHUP ask for an orderly stop; a second one makes the stop immediate."""
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, _frame: object) -> None:
        # Only set flags here: the main thread may hold the output lock.
        if self.stop_requested.is_set():
            self._hurry.set()
        else:
            self.received_signal = signal.Signals(signum)
            self.stop_requested.set()

    # --- children -------------------------------------------------------------------------------
    def start(self, spec: ChildSpec) -> Child:
        self._label_width = max(self._label_width, len(spec.name))
        # Each child leads its own process group: Ctrl-C reaches only this supervisor, which then stops the
        # children in order, and a child's own children (a worker's pool) can be swept up with it.
        popen = subprocess.Popen(
            list(spec.argv),
            cwd=self.cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **spec.env},
            stdin=subprocess.PIPE if spec.stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if spec.stdin is not None and popen.stdin is not None:
            with popen.stdin:
                popen.stdin.write(spec.stdin)
        assert popen.stdout is not None
        pump = threading.Thread(target=self._pump, args=(spec.name, popen.stdout), name=f"output-{spec.name}")
        pump.daemon = True
        pump.start()
        child = Child(spec, popen, pump)
        self.children.append(child)
        self.say(f"started {spec.name} (pid {popen.pid}): {' '.join(spec.argv)}")
        return child

    def first_exited(self) -> Child | None:
        return next((child for child in self.children if not child.running), None)

    def watch(self) -> Child | None:
        """Block until a stop is requested (None) or a child exits by itself (that child)."""
        while not self.stop_requested.wait(POLL_SECONDS):
            dead = self.first_exited()
            if dead is not None:
                dead.pump.join(timeout=2)  # its last words come before the report
                return dead
        return None

    def run_until_stopped(self) -> int:
        """Watch the children; 0 after a requested stop, 1 when one died (which is reported loudly)."""
        dead = self.watch()
        if dead is None:
            reason = self.received_signal.name if self.received_signal else "stop requested"
            self.say(f"{reason}: stopping every service (press Ctrl-C again to kill them at once)")
            return 0
        self.say(f"ERROR: {dead.name} (pid {dead.pid}) exited unexpectedly ({describe_exit(dead.popen.returncode)})")
        self.say("ERROR: stopping the other services; see the lines above for the cause")
        return 1

    def stop_all(self) -> None:
        """SIGTERM (a Celery worker's warm shutdown) tier by tier from the top, then SIGKILL what is left."""
        for tier in sorted({child.spec.tier for child in self.children}, reverse=True):
            self._stop_tier([child for child in self.children if child.spec.tier == tier])
        for child in self.children:
            child.pump.join(timeout=2)

    def _stop_tier(self, children: list[Child]) -> None:
        for child in children:
            if child.running:
                self.say(f"stopping {child.name} (pid {child.pid})")
                with contextlib.suppress(ProcessLookupError):
                    child.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while any(child.running for child in children) and time.monotonic() < deadline and not self._hurry.is_set():
            time.sleep(POLL_SECONDS)
        for child in children:
            if child.running:
                self.say(f"{child.name} (pid {child.pid}) did not stop in time: killing it")
            _kill_group(child)
            child.popen.wait()
            self.say(f"{child.name} stopped ({describe_exit(child.popen.returncode)})")


def _kill_group(child: Child) -> None:
    """SIGKILL the child and anything left in its process group (e.g. pool processes orphaned by a crash)."""
    killpg = getattr(os, "killpg", None)
    if killpg is None:  # Windows: no process groups to sweep
        if child.running:
            child.popen.kill()
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        killpg(child.pid, signal.SIGKILL)
