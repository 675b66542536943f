"""Reads the worker holds in memory only (convoflow.worker.broker_qos) still go back to the queue when their pool
process dies, and are answered."""

from __future__ import annotations

import signal
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis
from sqlalchemy import Connection, create_engine, text

from convoflow.tasks import names
from tests.conftest import make_stack
from tests.utils.processes import wait_until
from tests.utils.services import RedisTarget

pytestmark = pytest.mark.faults

# Less than the worker's visibility timeout (30 s): kombu could only give such a read back once it had expired.
EXPIRES = 29


def _waiting_on_the_lock(watcher: Connection) -> int:
    """How many of this database's sessions wait for a lock (the read stuck on the locked table)."""
    query = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
    return int(watcher.execute(text(query)).scalar_one())


def test_a_read_held_in_memory_whose_pool_process_dies_goes_back_to_the_queue_and_is_answered(
    postgres_url: str, redis_target: RedisTarget, log_dir: Path
) -> None:
    stack = make_stack("held-reads", redis_target, postgres_url, log_dir)
    client = redis.Redis(
        host=redis_target.host, port=redis_target.port, password=redis_target.password or None, decode_responses=True
    )
    blocker = create_engine(postgres_url).connect()
    watcher = create_engine(postgres_url, isolation_level="AUTOCOMMIT").connect()
    session = f"held-{uuid.uuid4()}"
    unacked = f"{stack.prefix}unacked"

    def read(**options: Any) -> Any:
        return stack.app.send_task(names.GET_HISTORY, kwargs={"session_id": session, "limit": 5}, **options)

    try:
        worker = stack.start_worker("-P", "prefork", "-c", "1")
        stack.call(names.INIT_DATABASE, timeout=60)
        (child,) = psutil.Process(worker.pid).children()
        # The pool's one process is stuck on the locked table with the first read (sent as the API sends reads:
        # expiring when its caller stops waiting); the second, sent as `.delay()` sends it, waits in the buffer.
        blocker.execute(text("LOCK TABLE conversation_turns IN ACCESS EXCLUSIVE MODE"))
        held = read(expires=EXPIRES)
        wait_until(lambda: _waiting_on_the_lock(watcher) == 1, 30, what="the first read to wait on the lock")
        recorded = read()
        wait_until(lambda: client.hlen(unacked) == 1, 30, what="the second read to reach the worker")
        in_redis = [str(entry) for entry in client.hvals(unacked)]
        child.send_signal(signal.SIGKILL)
        blocker.rollback()
        pages = [result.get(timeout=30) for result in (held, recorded)]
        log = worker.log()
    finally:
        blocker.close()
        watcher.close()
        client.close()
        stack.stop()
    assert len(in_redis) == 1 and recorded.id in in_redis[0] and held.id not in in_redis[0]
    assert "WorkerLostError" in log  # the read was lost with its process, then given back from memory
    assert [page["count"] for page in pages] == [0, 0]
