"""No user or model text in worker logs at INFO or above: only lengths, counts and ids."""

from __future__ import annotations

import uuid

from tests.utils.auth import KEYS, bearer
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


def api_log(stack: Stack) -> str:
    return next(p for p in stack.processes if p.name.endswith("api")).log()


def test_refused_api_keys_are_logged_without_the_key(keyed_stack: Stack) -> None:
    attempted = f"guess-{uuid.uuid4()}"
    with keyed_stack.http(headers={"Authorization": f"Bearer {attempted}"}) as client:
        assert client.get("/history").status_code == 401
    with keyed_stack.http(headers=bearer("alice")) as client:
        assert client.get("/history").status_code == 200
    log = api_log(keyed_stack)
    assert "refused GET /history: unknown API key" in log
    assert attempted not in log
    assert not any(key in log for key in KEYS.values())


def test_idempotent_requests_log_neither_the_key_nor_the_text(keyed_stack: Stack) -> None:
    idempotency_key = f"idem-{uuid.uuid4()}"
    secret = f"my pin is {uuid.uuid4()}"
    headers = {**bearer("alice"), "Idempotency-Key": idempotency_key}
    with keyed_stack.http(headers=headers) as client:
        first = client.post("/run", json={"user_input": secret})
        replay = client.post("/run", json={"user_input": secret})
        reused = client.post("/run", json={"user_input": f"{secret} changed"})
    assert (first.status_code, replay.status_code, reused.status_code) == (200, 200, 422)
    log = api_log(keyed_stack)
    assert f"replayed the answer of turn {first.json()['turn_id']}" in log
    assert idempotency_key not in log
    assert secret not in log
    worker_log = keyed_stack.processes[0].log()
    assert secret not in worker_log and idempotency_key not in worker_log
