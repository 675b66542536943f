"""Runs every benchmark figure side by side with its limit and prints a table; JSON goes to bench/results/."""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.api import history_latency, naive_reference, real_protocol_model, run_throughput, slow_model
from bench.drain import direct_insert_rates, drain_rate
from bench.harness import bench_stack, free_redis_db, python_loop_ms
from bench.soak import soak

RESULTS = Path(__file__).with_name("results")

TARGETS = [
    ("drain / direct commit-per-row (PostgreSQL)", "postgresql.drain_to_direct", ">= 1.5"),
    ("/run / bare endpoint", "run.run_to_bare", ">= 0.6"),
    ("/run p99 ms", "run.run_p99_ms", "< 50"),
    ("stored after /run load stops, s", "run.stored_after_load_s", "<= 5"),
    ("slow model turns/s (500 conns, 1 s model)", "slow.slow_turns_per_s", ">= 400"),
    ("GET /history p50 ms", "history.history_p50_ms", "<= 3"),
    ("GET /history p99 ms", "history.history_p99_ms", "<= 10"),
    ("API RSS MB (the issue's naive API: 98)", "run.api_rss_mb", "<= 98"),
    ("API RSS / naive API RSS, same packages", "memory.api_to_naive", "<= 1"),
    ("worker RSS / naive worker RSS, same packages", "memory.worker_to_naive", "<= 1"),
]

SECTIONS = ("drain", "run", "slow", "history", "openai", "dashscope", "soak")
# dashscope (the same real-protocol loads as openai, ~40 s) and soak (~3 minutes) only when asked for: the whole
# run stays under 5 minutes.
DEFAULT_SECTIONS = ("drain", "run", "slow", "history", "openai")


def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    if shutil.which("apt-get"):
        print("installing wrk (Debian package)", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, capture_output=True)
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")


def _lookup(figures: dict[str, Any], path: str) -> Any:
    section, key = path.split(".")
    return figures.get(section, {}).get(key)


def _fmt(value: Any) -> str:
    return f"{value:,.2f}" if isinstance(value, float) else str(value)


def print_table(figures: dict[str, Any]) -> None:
    print("\nTargets")
    print(f"{'figure':<46}{'measured':>12}  target")
    for label, path, target in TARGETS:
        print(f"{label:<46}{_fmt(_lookup(figures, path)):>12}  {target}")
    print("\nAll figures")
    for section, values in figures.items():
        if isinstance(values, dict):
            for key, value in values.items():
                print(f"  {section}.{key:<40}{_fmt(value):>14}")


def memory_against_naive(run: dict[str, Any], naive: dict[str, Any]) -> dict[str, float]:
    """convoflow's API and worker memory over the naive design's, both loaded alike in this run."""
    return {
        "api_to_naive": run["api_rss_mb"] / naive["naive_api_rss_mb"],
        "worker_to_naive": run["worker_rss_mb"] / naive["naive_worker_rss_mb"],
        "api_pss_to_naive": run["api_pss_mb"] / naive["naive_api_pss_mb"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--saves", type=int, default=20000, help="saves queued for the drain figure")
    parser.add_argument("--quick", action="store_true", help="shorter runs (a smoke test of the benchmark)")
    parser.add_argument(
        "--only",
        action="append",
        choices=SECTIONS,
        help="run only this measurement (repeatable); the default runs all of them but dashscope and soak",
    )
    args = parser.parse_args()
    only = set(args.only or DEFAULT_SECTIONS)
    ensure_wrk()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    log_dir = Path(tempfile.mkdtemp(prefix="convoflow-bench-"))
    seconds = 3 if args.quick else 10
    saves = 1000 if args.quick else args.saves
    figures: dict[str, Any] = {
        "meta": {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.node()} {platform.machine()} cpus={len(__import__('os').sched_getaffinity(0))}",
            "python": platform.python_version(),
            "python_loop_ms": python_loop_ms(),
        }
    }
    started = time.perf_counter()
    with free_redis_db() as redis_db:
        for backend in ("postgresql", "sqlite", "mariadb") if "drain" in only else ():
            try:
                with bench_stack(backend, log_dir, redis_db) as stack:
                    rows = 1000 if args.quick else 2000
                    before = direct_insert_rates(stack, rows)
                    drained = drain_rate(stack, saves)
                    after = direct_insert_rates(stack, rows)
            except RuntimeError as exc:
                figures[backend] = {"skipped": str(exc)}
                continue
            # The commit-per-row loop is bound by the disk's commit latency, which drifts on a shared machine:
            # it is measured just before and just after the drain, and the drain is compared with their mean.
            per_row = (before["direct_commit_per_row_per_s"] + after["direct_commit_per_row_per_s"]) / 2
            figures[backend] = {
                "direct_commit_per_row_before_per_s": before["direct_commit_per_row_per_s"],
                "direct_commit_per_row_after_per_s": after["direct_commit_per_row_per_s"],
                "direct_commit_per_row_per_s": per_row,
                "direct_batched_insert_per_s": before["direct_batched_insert_per_s"],
                **drained,
                "drain_to_direct": drained["celery_drain_per_s"] / per_row,
            }
            print(f"{backend}: {figures[backend]}", flush=True)
        with bench_stack("postgresql", log_dir, redis_db) as stack:
            if "run" in only:
                figures["run"] = run_throughput(stack, seconds=seconds)
                print(f"run: {figures['run']}", flush=True)
                figures["naive"] = naive_reference(stack, seconds=seconds)
                figures["memory"] = memory_against_naive(figures["run"], figures["naive"])
                print(f"naive: {figures['naive']}", flush=True)
            if "slow" in only:
                figures["slow"] = slow_model(stack, seconds=5 if args.quick else 15)
                two = slow_model(stack, seconds=5 if args.quick else 15, api_workers=2)
                figures["slow"]["api_workers_2_turns_per_s"] = two["slow_turns_per_s"]
                figures["slow"]["api_workers_2_p99_ms"] = two["slow_p99_ms"]
                print(f"slow: {figures['slow']}", flush=True)
            for provider in ("openai", "dashscope"):
                if provider in only:
                    slow_seconds = 5 if args.quick else 15
                    figures[provider] = real_protocol_model(stack, provider, seconds=seconds, slow_seconds=slow_seconds)
                    print(f"{provider}: {figures[provider]}", flush=True)
            if "history" in only:
                figures["history"] = history_latency(stack, seconds=3 if args.quick else 8)
                prefork = history_latency(stack, seconds=3 if args.quick else 8, pool="prefork")
                for key in ("history_p50_ms", "history_p99_ms", "worker_rss_mb", "worker_cpu_ms_per_read"):
                    figures["history"][f"prefork_pool_{key}"] = prefork[key]
                print(f"history: {figures['history']}", flush=True)
            if "soak" in only:
                figures["soak"] = soak(stack, rounds=2 if args.quick else 6, seconds=5 if args.quick else 30)
                print(f"soak: {figures['soak']}", flush=True)
    figures["meta"]["seconds"] = round(time.perf_counter() - started, 1)
    print_table(figures)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(figures, indent=2))
    print(f"\nwritten to {out}")
    shutil.rmtree(log_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
