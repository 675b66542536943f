"""Figure 1: draining a queue of single saves, against direct INSERT loops on the same database."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

import convoflow.tasks.conversations  # noqa: F401  (registers the tasks)
from bench.harness import BenchStack, rss_mb, wait_for_count
from convoflow.worker.app import create_celery_app
from tests.utils.processes import wait_until

INSERT = text(
    "INSERT INTO conversation_turns (turn_id, session_id, user_input, ai_response, status, timestamp, stored_at)"
    " VALUES (:turn_id, :session_id, :user_input, :ai_response, 'complete', :timestamp, :timestamp)"
)


def _row(index: int, dialect: str) -> dict[str, Any]:
    turn = uuid.uuid4()
    return {
        "turn_id": turn if dialect == "postgresql" else turn.hex,
        "session_id": f"bench-{index % 50}",
        "user_input": f"question {index}",
        "ai_response": f"answer {index}",
        "timestamp": datetime.now(UTC).replace(tzinfo=None) if dialect != "postgresql" else datetime.now(UTC),
    }


def direct_insert_rates(stack: BenchStack, rows: int) -> dict[str, float]:
    """One commit per row, and one batched INSERT, straight through SQLAlchemy."""
    engine = stack.engine()
    dialect = engine.dialect.name
    try:
        with engine.connect() as connection:
            started = time.perf_counter()
            for index in range(rows):
                connection.execute(INSERT, _row(index, dialect))
                connection.commit()
            one_by_one = rows / (time.perf_counter() - started)
            batch = [_row(index, dialect) for index in range(rows * 5)]
            started = time.perf_counter()
            connection.execute(INSERT, batch)
            connection.commit()
            batched = len(batch) / (time.perf_counter() - started)
            connection.execute(text("DELETE FROM conversation_turns"))
            connection.commit()
    finally:
        engine.dispose()
    return {"direct_commit_per_row_per_s": one_by_one, "direct_batched_insert_per_s": batched}


def drain_rate(stack: BenchStack, saves: int, concurrency: int = 2) -> dict[str, float]:
    """Queue `saves` single saves with the seed's `.delay(...)`, then time a fresh worker draining them."""
    app = create_celery_app(stack_settings(stack))
    task = app.tasks["celery_tasks.save_conversation_task"]
    with app.producer_or_acquire() as producer:
        for index in range(saves):
            task.apply_async((f"question {index}", f"answer {index}", f"drain-{index % 50}"), producer=producer)
    engine = stack.engine()
    try:
        worker = stack.worker(f"--concurrency={concurrency}", wait=False)
        wait_until(lambda: stack.count_turns(engine) > 0, 120, interval=0.01, what="the first stored turn")
        first = stack.count_turns(engine)
        elapsed = wait_for_count(stack, engine, saves, timeout=300)
        saves -= first
        memory = rss_mb(worker.pid)
        with engine.connect() as connection:
            connection.execute(text("DELETE FROM conversation_turns"))
            connection.commit()
    finally:
        engine.dispose()
        stack.stop_processes()
        app.close()
    return {"celery_drain_per_s": saves / elapsed, "worker_rss_mb": memory}


def stack_settings(stack: BenchStack) -> Any:
    from convoflow.config import Settings

    values = {key.lower(): value for key, value in stack.env.items() if key != "PYTHONUNBUFFERED"}
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]
