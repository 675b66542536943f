"""One logging setup: request ids from the API into the worker's lines, JSON lines with LOG_FORMAT=json, privacy."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

import convoflow.worker.telemetry  # noqa: F401  (connects the task signal handlers)
from convoflow.logging_setup import FORMAT, JsonLines, RequestContext
from convoflow.observability.request_id import bind_request_id, current_request_id, reset_request_id
from tests.conftest import make_stack
from tests.utils.ops import start_beat, start_quiet_worker
from tests.utils.processes import Process, wait_until
from tests.utils.service_logging import service_logging
from tests.utils.services import RedisTarget
from tests.utils.stack import Stack


def _lines_with(process: Process, *needles: str) -> list[str]:
    return [line for line in process.log().splitlines() if all(needle in line for needle in needles)]


def test_a_request_id_travels_from_the_api_into_the_workers_log_lines(sqlite_stack: Stack) -> None:
    worker, api = sqlite_stack.processes[0], sqlite_stack.processes[-1]
    request_id = f"req-{uuid.uuid4().hex[:12]}"
    with sqlite_stack.http() as client:
        response = client.post("/run", json={"user_input": "trace me"}, headers={"X-Request-ID": request_id})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == request_id
    task_id = response.json()["task_id"]
    tag = f"[{request_id}]"
    # The save travels in a batch message with other turns; its own line in the worker carries its request id.
    wait_until(lambda: bool(_lines_with(worker, tag, "stored turn", task_id)), 30, what="the worker's line")
    assert _lines_with(api, tag, "POST /run")
    assert _lines_with(api, tag, "save queued as task " + task_id)
    # A task sent without a request id afterwards is not attributed to this one.
    later = sqlite_stack.task("convoflow.check_database").apply_async()
    later.get(timeout=30)
    wait_until(lambda: bool(_lines_with(worker, later.id, "succeeded")), 30, what="the later task's line")
    assert all("[-]" in line for line in _lines_with(worker, later.id))


@pytest.fixture(scope="module")
def json_stack(sqlite_url: str, redis_target: RedisTarget, log_dir: Path) -> Iterator[Stack]:
    """Worker (banner off with `celery -q`), Beat and API, all with LOG_FORMAT=json."""
    stack = make_stack("json-logs", redis_target, sqlite_url, log_dir, LOG_FORMAT="json")
    try:
        start_quiet_worker(stack, "-c", "1")
        stack.call("celery_tasks.init_database_task", timeout=60)
        stack.start_api()
        yield stack
    finally:
        stack.stop()


def _json_lines(process: Process) -> list[dict[str, Any]]:
    return [json.loads(line) for line in process.log().splitlines() if line.strip()]


def test_log_format_json_gives_one_json_object_per_line_everywhere(json_stack: Stack, tmp_path: Path) -> None:
    beat = start_beat(json_stack, tmp_path, quiet=True)
    secret = f"my secret {uuid.uuid4()}"
    request_id = f"json-{uuid.uuid4().hex[:12]}"
    with json_stack.http() as client:
        response = client.post("/run", json={"user_input": secret}, headers={"X-Request-ID": request_id})
    assert response.status_code == 200
    worker, api = json_stack.processes[0], json_stack.processes[1]

    def worker_logged_the_save() -> bool:
        return any(
            entry.get("request_id") == request_id and "stored turn" in entry["message"] for entry in _json_lines(worker)
        )

    wait_until(worker_logged_the_save, 30, what="the worker's JSON line")
    wait_until(lambda: bool(_json_lines(beat)), 30, what="Beat's first line")
    for process in (worker, api, beat):
        entries = _json_lines(process)  # every line parses
        assert entries, process.name
        assert all({"time", "level", "logger", "message"} <= set(entry) for entry in entries)
        assert secret not in process.log()
    [saved] = [e for e in _json_lines(worker) if e.get("request_id") == request_id and "stored turn" in e["message"]]
    assert response.json()["task_id"] in saved["message"]
    assert any(e.get("request_id") == request_id and "POST /run" in e["message"] for e in _json_lines(api))


def _record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("celery.worker.strategy", logging.INFO, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    RequestContext().filter(record)
    return record


def test_json_lines_carry_only_fixed_fields_never_a_records_extra_data() -> None:
    token = bind_request_id("rid-1")
    try:
        record = _record("Task %(name)s received", {"name": "save"}, data={"args": "('user text',)"})
    finally:
        reset_request_id(token)
    entry = json.loads(JsonLines().format(record))
    assert entry["message"] == "Task save received"
    assert entry["request_id"] == "rid-1"
    assert "user text" not in json.dumps(entry)


def test_text_lines_show_the_request_id_or_a_dash() -> None:
    formatter = logging.Formatter(FORMAT)
    assert "[-]: plain" in formatter.format(_record("plain"))
    token = bind_request_id("abc")
    try:
        assert "[abc]: tagged" in formatter.format(_record("tagged"))
    finally:
        reset_request_id(token)


def test_a_task_run_eagerly_keeps_the_callers_request_id_and_gives_it_back() -> None:
    app = Celery("eager-probe", set_as_current=False)

    @app.task
    def probe() -> str | None:
        return current_request_id()

    token = bind_request_id("caller")
    try:
        assert probe.apply().get() == "caller"
        assert current_request_id() == "caller"
    finally:
        reset_request_id(token)


@pytest.mark.parametrize(("switch", "sdk_errors_logged"), [(None, False), ("debug", True)])
def test_the_dashscope_sdks_own_log_is_off_unless_its_debug_switch_is_set(
    monkeypatch: pytest.MonkeyPatch, switch: str | None, sdk_errors_logged: bool
) -> None:
    # The provider logs each failed attempt itself; DASHSCOPE_LOGGING_LEVEL is the SDK's switch to debug it.
    if switch is None:
        monkeypatch.delenv("DASHSCOPE_LOGGING_LEVEL", raising=False)
    else:
        monkeypatch.setenv("DASHSCOPE_LOGGING_LEVEL", switch)
    logging.getLogger("dashscope").setLevel(logging.NOTSET)
    with service_logging():
        assert logging.getLogger("dashscope").isEnabledFor(logging.ERROR) is sdk_errors_logged
