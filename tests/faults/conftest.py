"""Fault-injection fixtures: a PostgreSQL stack per test, and a summary table of what each fault did."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.utils.load import LoadResult
from tests.utils.processes import Process, wait_until
from tests.utils.services import create_database, drop_database, new_run_id, unavailable
from tests.utils.stack import Stack

FAULT_ROWS: list[dict[str, Any]] = []


@pytest.fixture
def postgres_url() -> Iterator[str]:
    url = create_database("postgresql", f"f{new_run_id()}")
    if url is None:
        unavailable("postgresql")
        return
    try:
        yield url
    finally:
        drop_database("postgresql", url)


def start_worker_and_api(stack: Stack) -> Process:
    """A two-process worker, the schema, then the API, in the order each fault test needs; returns the worker."""
    worker = stack.start_worker("-c", "2")
    stack.call("celery_tasks.init_database_task", timeout=60)
    stack.start_api()
    return worker


def stored_after_catch_up(
    stack: Stack, session_id: str, acknowledged: int, timeout: float = 180, interval: float = 1, what: str = "catch-up"
) -> list[str]:
    """Wait until the session holds at least `acknowledged` stored turns; returns their turn ids."""
    wait_until(lambda: len(stack.stored_turns(session_id)) >= acknowledged, timeout, interval=interval, what=what)
    return [turn["turn_id"] for turn in stack.stored_turns(session_id)]


def record_fault(fault: str, load: LoadResult, stored_turn_ids: list[str]) -> dict[str, Any]:
    """Count sent / acknowledged / stored / duplicated / lost / 5xx for the closing summary, and return it."""
    acknowledged = set(load.acknowledged)
    stored = [turn for turn in stored_turn_ids if turn in acknowledged]
    row = {
        "fault": fault,
        "sent": load.sent,
        "acknowledged": len(acknowledged),
        "stored": len(set(stored)),
        "duplicated": len(stored) - len(set(stored)),
        "lost": len(acknowledged - set(stored)),
        "5xx": load.count("5"),
        "503": load.count("503"),
        "other": {k: v for k, v in load.statuses.items() if k not in ("200", "503")},
    }
    FAULT_ROWS.append(row)
    return row


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FAULT_ROWS:
        return
    terminalreporter.section("fault injection")
    header = f"{'fault':<28}{'sent':>6}{'acked':>7}{'stored':>8}{'dup':>5}{'lost':>6}{'503':>6}{'other 5xx':>10}"
    terminalreporter.write_line(header)
    for row in FAULT_ROWS:
        terminalreporter.write_line(
            f"{row['fault']:<28}{row['sent']:>6}{row['acknowledged']:>7}{row['stored']:>8}{row['duplicated']:>5}"
            f"{row['lost']:>6}{row['503']:>6}{row['5xx'] - row['503']:>10}"
        )
    Path("data").mkdir(exist_ok=True)
    Path("data/fault-results.json").write_text(json.dumps(FAULT_ROWS, indent=2))
