"""Celery Beat's retention entry: a real beat process sends the cleanup, a real worker deletes old turns."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.conftest import make_stack
from tests.utils.processes import VENV_BIN, Process, wait_until
from tests.utils.services import RedisTarget
from tests.utils.stack import Stack

SAVE = "celery_tasks.save_conversation_task"


def _save(stack: Stack, session: str, age_days: float) -> None:
    stamp = (datetime.now(UTC) - timedelta(days=age_days)).isoformat()
    stack.call(SAVE, "q", "a", session, turn_id=str(uuid.uuid4()), timestamp=stamp)


def test_beat_runs_the_cleanup_that_deletes_turns_past_retention(
    sqlite_url: str, redis_target: RedisTarget, log_dir: Path, tmp_path: Path
) -> None:
    stack = make_stack(
        "beat",
        redis_target,
        sqlite_url,
        log_dir,
        RETENTION_DAYS="7",
        RETENTION_CLEANUP_SCHEDULE="1",
        RETENTION_BATCH_SIZE="2",
    )
    try:
        stack.start_worker("-c", "1")
        stack.call("celery_tasks.init_database_task", timeout=60)
        session = f"beat-{uuid.uuid4()}"
        for age in (30, 20, 10, 8):
            _save(stack, session, age)
        _save(stack, session, 1)
        beat = Process(
            "beat",
            [str(VENV_BIN / "celery"), "-A", "celery_app", "beat", "--loglevel=info", "-s", str(tmp_path / "schedule")],
            stack.env,
            log_dir,
        )
        stack.processes.append(beat)
        wait_until(lambda: len(stack.stored_turns(session)) == 1, 60, interval=0.5, what="the cleanup")
        worker_log = stack.processes[0].log()
    finally:
        stack.stop()
    assert "Scheduler: Sending due task cleanup-expired-conversations" in beat.log()
    assert "retention cleanup deleted 4 turns older than 7 days" in worker_log


def test_cleanup_task_skips_when_another_run_holds_the_lock(sqlite_stack: Stack) -> None:
    import redis

    client = redis.Redis(host=sqlite_stack.redis_host, port=sqlite_stack.redis_port)
    lock = client.lock(sqlite_stack.settings.redis_key("lock", "retention"), timeout=30)
    assert lock.acquire(blocking=False)
    try:
        result = sqlite_stack.call("convoflow.cleanup_expired_conversations")
    finally:
        lock.release()
        client.close()
    assert result == {"success": True, "deleted": 0, "skipped": True}
    assert sqlite_stack.call("convoflow.cleanup_expired_conversations")["skipped"] is False
