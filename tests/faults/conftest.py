"""Fault-injection fixtures: a PostgreSQL stack per test, and a summary table of what each fault did."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.utils.load import LoadResult
from tests.utils.services import create_database, drop_database, new_run_id, unavailable

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
