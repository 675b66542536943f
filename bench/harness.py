"""Shared pieces of the benchmark: a private namespace on the machine's Redis and PostgreSQL, processes, wrk."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import redis
from sqlalchemy import Engine, create_engine, text

from convoflow.db.migrate import upgrade_to_head
from tests.utils.processes import Process, free_port, start_api, start_worker, wait_until
from tests.utils.services import create_database, drop_database, new_run_id


@dataclass
class BenchStack:
    """One database and one Redis namespace; processes started with `env` see exactly these."""

    backend: str
    database_url: str
    log_dir: Path
    redis_db: int = 0
    redis_host: str = "127.0.0.1"
    redis_port: int = 6379
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: list[Process] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {
            "REDIS_HOST": self.redis_host,
            "REDIS_PORT": str(self.redis_port),
            "REDIS_DB": str(self.redis_db),
            "REDIS_KEY_PREFIX": "",
            "DATABASE_URL": self.database_url,
            "LLM_PROVIDER": "offline",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }

    def engine(self) -> Engine:
        return create_engine(self.database_url)

    def count_turns(self, engine: Engine) -> int:
        with engine.connect() as connection:
            return int(connection.execute(text("SELECT count(*) FROM conversation_turns")).scalar_one())

    def worker(self, *args: str, wait: bool = True) -> Process:
        process = start_worker(self.env, self.log_dir, *args, name=f"bench-{self.backend}-worker")
        self.processes.append(process)
        if wait:
            wait_until(lambda: "ready." in process.log(), 60, what="the worker")
        return process

    def api(self, **env: str) -> tuple[Process, str]:
        port = free_port()
        saved = self.extra_env
        self.extra_env = {**saved, **env}
        try:
            process = start_api(self.env, self.log_dir, port, name=f"bench-{self.backend}-api")
        finally:
            self.extra_env = saved
        self.processes.append(process)
        return process, f"http://127.0.0.1:{port}"

    def stop_processes(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()


@contextmanager
def free_redis_db(host: str = "127.0.0.1", port: int = 6379) -> Iterator[int]:
    """An empty database index of the machine's Redis, flushed afterwards.

    The benchmark uses no key prefix, as a deployment would, so it needs a logical database of its own.
    """
    for index in range(15, 0, -1):
        client = redis.Redis(host=host, port=port, db=index)
        try:
            if client.dbsize() == 0:
                break
        finally:
            client.close()
    else:
        raise RuntimeError("no empty Redis database index (1-15) to benchmark in")
    try:
        yield index
    finally:
        client = redis.Redis(host=host, port=port, db=index)
        client.flushdb()
        client.close()


@contextmanager
def bench_stack(backend: str, log_dir: Path, redis_db: int) -> Iterator[BenchStack]:
    url = create_database(backend, f"b{new_run_id()}")
    if url is None:
        raise RuntimeError(f"{backend} does not answer on this machine")
    stack = BenchStack(backend=backend, database_url=url, log_dir=log_dir, redis_db=redis_db)
    upgrade_to_head(url)
    try:
        yield stack
    finally:
        stack.stop_processes()
        from convoflow.db.engine import forget_engines

        forget_engines(url)
        drop_database(backend, url)


def python_loop_ms(rounds: int = 5) -> float:
    """The best of `rounds` timings of one fixed pure-Python loop: how fast this machine runs Python right now.

    A shared machine's speed drifts (two to three times between periods); this puts a run's figures in context.
    """
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        total = 0
        for value in range(1_000_000):
            total += value
        timings.append((time.perf_counter() - started) * 1000)
    return round(min(timings), 1)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, its children not included."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def group_cpu_seconds(pid: int) -> float:
    """CPU time a process and its live children (a prefork worker's pool) have used so far."""
    process = psutil.Process(pid)
    return cpu_seconds(pid) + sum(cpu_seconds(child.pid) for child in process.children(recursive=True))


def rss_mb(pid: int) -> float:
    """Resident memory of a process and all its children, in MiB (pages they share are counted in each)."""
    process = psutil.Process(pid)
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        with suppress(psutil.NoSuchProcess):
            total += child.memory_info().rss
    return total / 2**20


def redis_used_mb(stack: BenchStack) -> float:
    """Memory the stack's Redis uses (INFO used_memory): what results, queues and session memory occupy."""
    client = redis.Redis(host=stack.redis_host, port=stack.redis_port, db=stack.redis_db)
    try:
        return int(client.info("memory")["used_memory"]) / 2**20
    finally:
        client.close()


def pss_mb(pid: int) -> float:
    """Proportional set size of a process and all its children, in MiB: each shared page split among its sharers,
    so the sum is what the group really occupies (a prefork pool shares what its parent loaded before forking)."""
    process = psutil.Process(pid)
    total = process.memory_full_info().pss
    for child in process.children(recursive=True):
        with suppress(psutil.NoSuchProcess):
            total += child.memory_full_info().pss
    return float(total / 2**20)


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    non_2xx: int
    errors: int
    latency_ms: dict[str, float]
    output: str = ""  # wrk's whole report, with whatever the script's done() wrote

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if not match:
        return float("nan")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(url: str, *, connections: int, seconds: int, threads: int = 2, script: Path | None = None) -> WrkResult:
    """Drive `url` with wrk; latency percentiles from its --latency table."""
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk is not installed: apt-get install wrk")
    argv = [binary, "-t", str(min(threads, connections)), "-c", str(connections), "-d", f"{seconds}s", "--latency"]
    argv += ["--timeout", "10s"]
    if script is not None:
        argv += ["-s", str(script)]
    output = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    requests = int(re.search(r"(\d+) requests in ([\d.]+)(\w+)", output).group(1))  # type: ignore[union-attr]
    elapsed = re.search(r"requests in ([\d.]+)(\w+)", output)
    seconds_taken = _ms(f"{elapsed.group(1)}{elapsed.group(2)}") / 1000 if elapsed else float(seconds)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    latency = {p: _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", output, re.MULTILINE)}
    return WrkResult(
        requests=requests,
        seconds=seconds_taken,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        errors=sum(int(n) for n in socket_errors.groups()) if socket_errors else 0,
        latency_ms=latency,
        output=output,
    )


def wait_for_count(stack: BenchStack, engine: Engine, expected: int, timeout: float) -> float:
    """Seconds until the database holds `expected` turns (raises on timeout)."""
    started = time.perf_counter()
    wait_until(lambda: stack.count_turns(engine) >= expected, timeout, interval=0.02, what=f"{expected} stored turns")
    return time.perf_counter() - started
