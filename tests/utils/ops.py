"""Helpers for the operations tests: Beat and quiet workers as processes, /health and Prometheus text readers."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.utils.processes import VENV_BIN, Process, wait_until
from tests.utils.stack import Stack


def start_beat(stack: Stack, schedule_dir: Path, name: str = "beat", quiet: bool = False) -> Process:
    """`celery -A celery_app beat` in the stack's namespace (its schedule file under `schedule_dir`)."""
    options = ["-q"] if quiet else []
    argv = [str(VENV_BIN / "celery"), "-A", "celery_app", *options, "beat", "--loglevel=info"]
    argv += ["-s", str(schedule_dir / name)]
    process = Process(f"{stack.name}-{name}", argv, stack.env, stack.log_dir)
    stack.processes.append(process)
    return process


def start_quiet_worker(stack: Stack, *extra: str, name: str = "worker") -> Process:
    """A worker started with `celery -q` (no banner on stdout), waited for like Stack's own."""
    argv = [str(VENV_BIN / "celery"), "-A", "celery_app", "-q", "worker", "--loglevel=info", *extra]
    process = Process(f"{stack.name}-{name}", argv, stack.env, stack.log_dir)
    stack.processes.append(process)
    stack.wait_for_worker(process)
    return process


def health(stack: Stack) -> tuple[int, dict[str, Any]]:
    with stack.http() as client:
        response = client.get("/health")
    body: dict[str, Any] = response.json()
    return response.status_code, body


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_metrics(text: str) -> Samples:
    """Every sample of a Prometheus text exposition, keyed by (sample name, labels)."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample's value; 0 when it is absent (a counter never incremented)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape(url: str, headers: Mapping[str, str] | None = None) -> Samples:
    response = httpx.get(url, headers=dict(headers or {}), timeout=10)
    response.raise_for_status()
    return parse_metrics(response.text)


def wait_until_flower_lists_a_worker(url: str, auth: tuple[str, str], timeout: float = 60) -> None:
    """Flower at `url` (behind `auth`) shows a worker: it reached the workers through the broker."""

    def worker_listed() -> bool:
        response = httpx.get(f"{url}/api/workers", params={"refresh": "1"}, auth=auth, timeout=30)
        return response.status_code == 200 and any(name.startswith("celery@") for name in response.json())

    wait_until(worker_listed, timeout, what="Flower to list the worker")
