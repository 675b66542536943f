"""The seed's own calls, verbatim, from a separate Python process: `from celery_tasks import ...` and `.delay(...)`."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.utils.processes import PROJECT_ROOT
from tests.utils.stack import Stack

SCRIPT = """
import json
from celery_tasks import save_conversation_task, get_conversation_history_task
from celery_tasks import delete_conversation_history_task, init_database_task
out = {}
out["init"] = init_database_task.delay().get(timeout=60)
out["save"] = save_conversation_task.delay("Hello", "Hi from the seed", "seed-session").get(timeout=30)
out["history"] = get_conversation_history_task.delay(limit=50, session_id=None).get(timeout=30)
out["delete"] = delete_conversation_history_task.delay(days_old=30).get(timeout=30)
print(json.dumps(out))
"""


def test_the_seeds_task_calls_work_verbatim(sqlite_stack: Stack) -> None:
    completed = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=PROJECT_ROOT,
        env={**sqlite_stack.env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    out = json.loads(completed.stdout.strip().splitlines()[-1])
    assert out["init"]["success"] is True
    assert out["save"]["success"] is True and out["save"]["stored"] is True
    assert out["history"]["success"] is True
    assert out["save"]["turn_id"] in {turn["turn_id"] for turn in out["history"]["history"]}
    assert out["delete"] == {"success": True, "deleted": 0, "days_old": 30, "session_id": None}


def test_the_worker_consumes_every_queue_without_a_q_flag(sqlite_stack: Stack) -> None:
    worker_log = sqlite_stack.processes[0].log()
    assert ".> database" in worker_log and ".> workflow" in worker_log
    replies = sqlite_stack.app.control.inspect(timeout=2).active_queues() or {}
    assert {queue["name"] for queues in replies.values() for queue in queues} == {"database", "workflow"}
