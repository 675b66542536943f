"""No user or model text in worker logs at INFO or above: only lengths, counts and ids."""

from __future__ import annotations

import uuid

from tests.utils.stack import Stack


def test_worker_logs_never_contain_conversation_text(sqlite_stack: Stack) -> None:
    secret_question = f"my password is {uuid.uuid4()}"
    secret_answer = f"noted {uuid.uuid4()}"
    session = f"priv-{uuid.uuid4()}"
    sqlite_stack.call("celery_tasks.save_conversation_task", secret_question, secret_answer, session)
    history = sqlite_stack.call("celery_tasks.get_conversation_history_task", limit=5, session_id=session)
    assert history["history"][0]["user_input"] == secret_question
    log = sqlite_stack.processes[0].log()
    assert "succeeded in" in log  # the task lines are there...
    assert secret_question not in log and secret_answer not in log  # ...without the text


def test_api_logs_never_contain_conversation_text(sqlite_stack: Stack) -> None:
    secret = f"card number {uuid.uuid4()}"
    with sqlite_stack.http() as client:
        assert client.post("/run", json={"user_input": secret}).status_code == 200
    api_log = next(p for p in sqlite_stack.processes if p.name.endswith("api")).log()
    assert "POST /run" in api_log
    assert secret not in api_log
