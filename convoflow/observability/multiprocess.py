"""Prometheus multi-process mode: one metrics directory per process group (the API's uvicorn workers, a worker's pool).

prometheus_client learns about multi-process mode from the PROMETHEUS_MULTIPROC_DIR environment variable, read
when the library is first imported; child processes inherit it. The entry points (`main.py` for the API,
`celery_app.py` for the workers) choose the directory before convoflow defines its metrics. The `celery` command
imports prometheus_client earlier (through Flower's command plugin), so the library's choice is made again here.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

from convoflow.config import Settings

ENV_VAR = "PROMETHEUS_MULTIPROC_DIR"
METRICS_MODULE = "convoflow.observability.metrics"


def use_private_directory(settings: Settings, role: str) -> str:
    """Point PROMETHEUS_MULTIPROC_DIR at a fresh directory for this process and its children.

    A directory already given in the environment is used as it is (its owner wipes it between runs).
    The directory made here lives under METRICS_DIR (or the system's temp dir) and goes when this process exits.
    """
    existing = os.environ.get(ENV_VAR)
    if existing:
        _switch_value_class()
        return existing
    base = Path(settings.metrics_dir) if settings.metrics_dir else None
    if base is not None:
        base.mkdir(parents=True, exist_ok=True)
    directory = tempfile.mkdtemp(prefix=f"convoflow-{role}-metrics-", dir=base)
    os.environ[ENV_VAR] = directory
    atexit.register(_remove, directory, os.getpid())
    _switch_value_class()
    return directory


def _switch_value_class() -> None:
    """Make metrics defined from now on write to the directory, even if prometheus_client is already imported."""
    if METRICS_MODULE in sys.modules:
        raise RuntimeError("choose the metrics directory before convoflow's metrics are defined")
    from prometheus_client import values

    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def active_directory() -> str | None:
    """The multi-process metrics directory of this process, if it has one."""
    return os.environ.get(ENV_VAR) or None


def _remove(directory: str, owner: int) -> None:
    # Forked children inherit atexit hooks; only the process that made the directory removes it.
    if os.getpid() == owner:
        shutil.rmtree(directory, ignore_errors=True)
