"""Guarantee 2: PostgreSQL down for 10 s under load: /run keeps answering, every answered turn is stored once."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import make_stack
from tests.faults.conftest import record_fault, start_worker_and_api, stored_after_catch_up
from tests.utils.load import BackgroundLoad
from tests.utils.processes import port_open, wait_until
from tests.utils.services import RedisTarget, required

pytestmark = pytest.mark.faults


def _cluster() -> list[str]:
    versions = sorted(Path("/etc/postgresql").iterdir()) if Path("/etc/postgresql").is_dir() else []
    if not versions or shutil.which("pg_ctlcluster") is None:
        if required():
            pytest.fail("pg_ctlcluster is needed to stop and start PostgreSQL", pytrace=False)
        pytest.skip("cannot stop and start PostgreSQL here")
    return ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1].name, "main"]


def _postgres(cluster: list[str], action: str) -> None:
    subprocess.run([*cluster, action, *(["-m", "fast"] if action == "stop" else [])], check=True, timeout=60)


def test_database_outage_loses_no_acknowledged_turn(
    postgres_url: str, redis_target: RedisTarget, log_dir: Path
) -> None:
    cluster = _cluster()
    stack = make_stack("db-outage", redis_target, postgres_url, log_dir)
    session = f"outage-{uuid.uuid4()}"
    try:
        start_worker_and_api(stack)
        load = BackgroundLoad(stack.api_url, session, 400, concurrency=4, pause=0.15, label="outage")
        wait_until(lambda: len(load.result.acknowledged) >= 50, 60, what="load before the outage")
        try:
            _postgres(cluster, "stop")
            answered_before = load.result.sent
            time.sleep(10)
            answered_during = load.result.sent - answered_before
        finally:
            _postgres(cluster, "start")
            wait_until(lambda: port_open("127.0.0.1", 5432), 60, what="PostgreSQL to come back")
        result = load.join()
        stored = stored_after_catch_up(stack, session, len(result.acknowledged))
    finally:
        stack.stop()
    row = record_fault("PostgreSQL down 10 s", result, stored)
    assert answered_during > 0, "/run must keep answering while the database is down"
    assert row["lost"] == 0 and row["duplicated"] == 0
    assert row["5xx"] == 0 and row["acknowledged"] == row["sent"]
