"""Task events, what Flower shows of each task: every finished task's arrives, without conversation text.

Celery renders each return value up to the task's `resultrepr_maxsize` characters for its task-succeeded event and
log line; a history page rendered to the default 1,024 characters cost worker CPU and put conversation text on
display. With the threads pool, Celery's buffered task events could be dropped (convoflow.worker.events).
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

from convoflow.tasks import names
from tests.conftest import make_stack
from tests.utils.processes import wait_until
from tests.utils.services import RedisTarget
from tests.utils.stack import running

READS = 20


def test_every_reads_succeeded_event_arrives_with_its_counts_but_no_conversation_text(
    sqlite_url: str, redis_target: RedisTarget, log_dir: Path
) -> None:
    stack = make_stack("events", redis_target, sqlite_url, log_dir)
    events: list[dict[str, Any]] = []

    def succeeded() -> dict[str, dict[str, Any]]:
        return {event["uuid"]: event for event in list(events) if event["type"] == "task-succeeded"}

    with running(stack, api=False, worker_args=("-c", "2", "-E")) as live:
        session = f"events-{uuid.uuid4().hex[:8]}"
        secret = "a sentence that should never be on display in Flower"
        for _ in range(3):
            live.call(names.SAVE_CONVERSATION, secret, secret, session)

        with live.app.connection_for_read() as connection:
            receiver = live.app.events.Receiver(connection, handlers={"*": events.append})
            listening = threading.Thread(target=receiver.capture, kwargs={"limit": None, "timeout": 60}, daemon=True)
            listening.start()
            try:
                # The worker's heartbeat (every 2 s) shows the receiver is listening before the reads are sent.
                wait_until(lambda: any(event["type"] == "worker-heartbeat" for event in events), 30, what="events")
                reads = []
                for _ in range(READS):
                    read = live.task(names.GET_HISTORY).apply_async(kwargs={"session_id": session, "limit": 50})
                    reads.append((read.id, read.get(timeout=30)))
                wait_until(lambda: {read_id for read_id, _ in reads} <= succeeded().keys(), 20, what="every event")
            finally:
                receiver.should_stop = True
                listening.join(timeout=10)

    for read_id, page in reads:
        assert [turn["user_input"] for turn in page["history"]] == [secret] * 3
        result = succeeded()[read_id]["result"]
        assert "'count': 3" in result
        assert "sentence" not in result
        assert len(result) <= 80
