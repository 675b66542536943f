"""WORKER_POOL applies only when the command line names no pool (else Celery would override -P prefork)."""

from __future__ import annotations

import pytest

from convoflow.config import Settings
from convoflow.worker.pool import configured_pool

WORKER = ["celery", "-A", "celery_app", "worker", "--loglevel=info"]


@pytest.mark.parametrize(
    "extra", [["-P", "prefork"], ["-Pprefork"], ["--pool", "solo"], ["--pool=prefork"], ["-c", "2", "-P", "threads"]]
)
def test_a_pool_on_the_command_line_wins(extra: list[str]) -> None:
    assert configured_pool(Settings(worker_pool="threads"), [*WORKER, *extra]) is None


@pytest.mark.parametrize("pool", ["threads", "prefork", "solo"])
def test_without_one_the_setting_chooses(pool: str) -> None:
    assert configured_pool(Settings(worker_pool=pool), [*WORKER, "--concurrency=2", "-Q", "database"]) == pool


def test_threads_by_default() -> None:
    assert Settings.model_fields["worker_pool"].default == "threads"


def test_an_unknown_pool_is_refused() -> None:
    with pytest.raises(ValueError, match="worker_pool"):
        Settings(worker_pool="forkserver")
