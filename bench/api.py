"""Figures 2-5: /run against a bare FastAPI endpoint, a slow model, /history through the queue, memory."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from bench.harness import (
    BenchStack,
    WrkResult,
    cpu_seconds,
    group_cpu_seconds,
    pss_mb,
    rss_mb,
    wait_for_count,
    wrk,
)
from bench.model_server import STREAMED_WORDS
from convoflow.db.engine import get_engine
from convoflow.db.repository import list_history
from tests.utils.model_protocols import BY_PROVIDER
from tests.utils.processes import PROJECT_ROOT, VENV_BIN, Process, free_port, wait_until

RUN_SCRIPT = Path(__file__).with_name("run.lua")


def _serve(app: str, name: str, env: Mapping[str, str], log_dir: Path) -> tuple[Process, str]:
    """`app` under uvicorn on a free port, once it answers (stopped again if it never does); (process, url)."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
    process = Process(name, [*argv, "--log-level", "warning", "--no-access-log"], env, log_dir)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(url), 30, what=f"the {name} endpoint")
    except BaseException:
        process.stop()
        raise
    return process, url


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/docs", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def run_throughput(stack: BenchStack, seconds: int = 10, connections: int = 32) -> dict[str, Any]:
    """POST /run (offline model) beside the same body on a bare endpoint; then how long persistence lags."""
    bare, bare_url = _serve("bench.bare_app:app", "bare", {}, stack.log_dir)
    try:
        bare_result = wrk(f"{bare_url}/run", connections=connections, seconds=seconds, script=RUN_SCRIPT)
    finally:
        bare.stop()
    worker = stack.worker("--concurrency=2")
    api, url = stack.api()
    try:
        load = _load_run(stack, api, url, connections=connections, seconds=seconds)
        result = load.result
        figures = {
            "bare_rps": bare_result.rps,
            "bare_p99_ms": bare_result.latency_ms.get("99"),
            "run_rps": load.turns_per_s,
            "run_p50_ms": result.latency_ms.get("50"),
            "run_p99_ms": result.latency_ms.get("99"),
            "run_errors": result.non_2xx + result.errors,
            "run_to_bare": result.rps / bare_result.rps if bare_result.rps else 0.0,
            "stored_after_load_s": load.stored_after_s,
            "api_rss_mb": rss_mb(api.pid),
            "worker_rss_mb": rss_mb(worker.pid),
            "api_pss_mb": pss_mb(api.pid),
            "worker_pss_mb": pss_mb(worker.pid),
        }
    finally:
        stack.stop_processes()
    return figures


@dataclass(frozen=True)
class RunLoad:
    """One wrk load on POST /run: what wrk saw, the turns answered, the seconds until all of them were stored, and
    the CPU time the API process (not its children) spent during the load."""

    result: WrkResult
    answered: int
    stored_after_s: float
    api_cpu_s: float

    @property
    def turns_per_s(self) -> float:
        """Answered turns only: a 503 or a timeout is not a turn."""
        return self.answered / self.result.seconds if self.result.seconds else 0.0


def _load_run(
    stack: BenchStack, api: Process, url: str, *, connections: int, seconds: int, path: str = "/run"
) -> RunLoad:
    """Drive `url`'s /run (or /run/stream) with wrk, then wait until the database holds every turn it answered."""
    engine = stack.engine()
    try:
        before = stack.count_turns(engine)
        cpu_before = cpu_seconds(api.pid)
        result = wrk(f"{url}{path}", connections=connections, seconds=seconds, script=RUN_SCRIPT)
        api_cpu = cpu_seconds(api.pid) - cpu_before
        answered = result.requests - result.non_2xx
        stored_after = wait_for_count(stack, engine, before + answered, timeout=120)
    finally:
        engine.dispose()
    return RunLoad(result, answered, stored_after, api_cpu)


@contextmanager
def serving_naive(stack: BenchStack) -> Iterator[tuple[Process, Process, str]]:
    """The naive design (bench/naive_app.py): its schema made, its worker and API started; (api, worker, url)."""
    env = {
        "NAIVE_REDIS_URL": f"redis://{stack.redis_host}:{stack.redis_port}/{stack.redis_db}",
        "NAIVE_DATABASE_URL": stack.database_url,
        "PYTHONUNBUFFERED": "1",
    }
    schema = "from bench.naive_app import create_schema; create_schema()"
    subprocess.run([sys.executable, "-c", schema], env={**os.environ, **env}, cwd=PROJECT_ROOT, check=True)
    worker = Process(
        "naive-worker",
        [str(VENV_BIN / "celery"), "-A", "bench.naive_app:celery", "worker", "--concurrency=2", "--loglevel=info"],
        env,
        stack.log_dir,
    )
    try:
        wait_until(lambda: "ready." in worker.log(), 60, what="the naive worker")
        api, url = _serve("bench.naive_app:app", "naive-api", env, stack.log_dir)
        try:
            yield api, worker, url
        finally:
            api.stop()
    finally:
        worker.stop()


def naive_reference(stack: BenchStack, seconds: int = 10, connections: int = 32) -> dict[str, Any]:
    """The naive design served and loaded like /run: its requests/s, how far its saves lag, its memory, today."""
    with serving_naive(stack) as (api, worker, url):
        result = wrk(f"{url}/run", connections=connections, seconds=seconds, script=RUN_SCRIPT)
        engine = stack.engine()
        try:
            with engine.connect() as connection:
                stored = int(connection.execute(text("SELECT count(*) FROM naive_turns")).scalar_one())
        finally:
            engine.dispose()
        return {
            "naive_run_rps": result.rps,
            # Its one-commit-per-task saves fall behind the answers: the share stored when the load stops.
            "naive_stored_when_load_stops": stored / max(result.requests - result.non_2xx, 1),
            "naive_run_p99_ms": result.latency_ms.get("99"),
            "naive_api_rss_mb": rss_mb(api.pid),
            "naive_worker_rss_mb": rss_mb(worker.pid),
            "naive_api_pss_mb": pss_mb(api.pid),
            "naive_worker_pss_mb": pss_mb(worker.pid),
        }


def slow_model(
    stack: BenchStack, seconds: int = 15, connections: int = 500, latency_ms: int = 1000, api_workers: int = 1
) -> dict[str, Any]:
    """A model that takes a second: the API must hold no thread per call, so hundreds wait at once."""
    stack.worker("--concurrency=2")
    api, url = stack.api(OFFLINE_LATENCY_MS=str(latency_ms), API_WORKERS=str(api_workers))
    try:
        load = _load_run(stack, api, url, connections=connections, seconds=seconds)
        figures = {
            "slow_turns_per_s": load.turns_per_s,
            "slow_p50_ms": load.result.latency_ms.get("50"),
            "slow_p99_ms": load.result.latency_ms.get("99"),
            "slow_errors": load.result.non_2xx + load.result.errors,
            "slow_all_stored_after_s": load.stored_after_s,
            "slow_api_rss_mb": rss_mb(api.pid),
        }
    finally:
        stack.stop_processes()
    return figures


def real_protocol_model(
    stack: BenchStack, provider: str = "openai", seconds: int = 10, slow_seconds: int = 15
) -> dict[str, Any]:
    """/run with LLM_PROVIDER=`provider` against a local endpoint speaking its real protocol
    (bench/model_server.py): what the client costs the API per turn, with an instant model (32 connections), a
    1 s one (500), and /run/stream of answers of STREAMED_WORDS chunks from the instant model (32)."""
    figures: dict[str, Any] = {"stream_chunks_per_answer": STREAMED_WORDS}
    with serving_model(stack) as root_url:
        for label, model, connections, duration, path in (
            ("instant", "echo-0", 32, seconds, "/run"),
            ("slow", "echo-1000", 500, slow_seconds, "/run"),
            ("stream", "echo-0", 32, seconds, "/run/stream"),
        ):
            stack.worker("--concurrency=2")
            api, url = stack.api(LLM_MODEL=model, **BY_PROVIDER[provider].env(root_url))
            try:
                load = _load_run(stack, api, url, connections=connections, seconds=duration, path=path)
            finally:
                stack.stop_processes()
            figures.update(
                {
                    f"{label}_turns_per_s": load.turns_per_s,
                    f"{label}_p50_ms": load.result.latency_ms.get("50"),
                    f"{label}_p99_ms": load.result.latency_ms.get("99"),
                    f"{label}_errors": load.result.non_2xx + load.result.errors,
                    f"{label}_api_cpu_ms_per_turn": load.api_cpu_s * 1000 / load.answered if load.answered else 0.0,
                    f"{label}_all_stored_after_s": load.stored_after_s,
                }
            )
    return figures


@contextmanager
def serving_model(stack: BenchStack) -> Iterator[str]:
    """bench/model_server.py under uvicorn; its root URL (scheme, host, port: see ModelProtocol.env)."""
    server, url = _serve("bench.model_server:app", "model-server", {}, stack.log_dir)
    try:
        yield url
    finally:
        server.stop()


def history_latency(stack: BenchStack, seconds: int = 8, pool: str | None = None) -> dict[str, Any]:
    """GET /history of 50 turns through the queue, one client at a time; and the same SELECT done directly.

    `pool` names the worker's pool on its command line; by default the worker runs WORKER_POOL's."""
    worker = stack.worker("--concurrency=2", *([f"--pool={pool}"] if pool else []))
    api, url = stack.api()
    session = f"history-bench-{pool or 'default'}"
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            for index in range(50):
                client.post("/run", json={"user_input": f"history {index}", "session_id": session})
            wait_until(
                lambda: client.get("/history", params={"session_id": session, "limit": 50}).json()["count"] == 50,
                60,
                what="50 stored turns",
            )
        api_before, worker_before = cpu_seconds(api.pid), group_cpu_seconds(worker.pid)
        result = wrk(f"{url}/history?session_id={session}&limit=50", connections=1, seconds=seconds, threads=1)
        reads = max(result.rps * seconds, 1.0)
        api_cpu, worker_cpu = cpu_seconds(api.pid) - api_before, group_cpu_seconds(worker.pid) - worker_before
        direct = _direct_select_ms(stack, session)
        figures = {
            "history_p50_ms": result.latency_ms.get("50"),
            "history_p99_ms": result.latency_ms.get("99"),
            "history_rps_one_client": result.rps,
            "direct_select_p50_ms": direct,
            "history_to_direct": (result.latency_ms.get("50") or 0.0) / direct if direct else 0.0,
            # CPU time per read (the worker's with its pool children): steadier than latency on a drifting machine.
            "api_cpu_ms_per_read": api_cpu / reads * 1000,
            "worker_cpu_ms_per_read": worker_cpu / reads * 1000,
            "worker_rss_mb": rss_mb(worker.pid),
        }
    finally:
        stack.stop_processes()
    return figures


def _direct_select_ms(stack: BenchStack, session: str, rounds: int = 300) -> float:
    """The history page's SELECT as a worker runs it (the read pool's autocommit connection), minus everything else."""
    timings = []
    with get_engine(stack.database_url, reads=True).connect() as connection:
        for _ in range(rounds):
            started = time.perf_counter()
            rows = list_history(connection, limit=50, session_id=session)
            [row.user_input for row in rows]
            timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)
