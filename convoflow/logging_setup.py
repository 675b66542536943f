"""One logging setup for the API, the workers and Beat."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

from celery._state import get_current_task

from convoflow.observability.request_id import current_request_id

# The environment variable the DashScope SDK reads to log its requests (info or debug).
DASHSCOPE_LOGGING_LEVEL = "DASHSCOPE_LOGGING_LEVEL"

FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s [%(request_id)s]: %(message)s"


# Result fields that identify a turn without revealing what anyone said.
SAFE_RESULT_FIELDS = frozenset({"turn_id", "session_id", "task_id", "revision", "revision_before"})


def summarise_result(value: Any) -> Any:
    """A task result with every piece of user or model text left out (numbers, flags and ids stay)."""
    if not isinstance(value, dict):
        return f"<{type(value).__name__}>"
    kept: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(item, bool | int | float) or item is None or key in SAFE_RESULT_FIELDS:
            kept[key] = item
        elif isinstance(item, list):
            kept[key] = f"<{len(item)} items>"
    return kept


TEXT_ARGUMENTS = frozenset({"user_input", "ai_response", "turns"})


def describe_arguments(kwargs: dict[str, Any]) -> str:
    """A task's keyword arguments as Flower and the logs may show them: sizes instead of conversation text."""
    shown = []
    for key, value in kwargs.items():
        if key in TEXT_ARGUMENTS and isinstance(value, str | list):
            unit = "items" if isinstance(value, list) else "chars"
            shown.append(f"{key!r}: <{len(value)} {unit}>")
        else:
            shown.append(f"{key!r}: {value!r}")
    return "{" + ", ".join(shown) + "}"


class RedactTaskResults(logging.Filter):
    """Celery logs each task's return value at INFO; ours can hold conversation text, so summarise it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, dict) and "return_value" in record.args:
            record.args = {**record.args, "return_value": summarise_result(record.args["return_value"])}
        return True


def install_privacy_filters() -> None:
    trace_logger = logging.getLogger("celery.app.trace")
    if not any(isinstance(f, RedactTaskResults) for f in trace_logger.filters):
        trace_logger.addFilter(RedactTaskResults())


class RequestContext(logging.Filter):
    """Stamps every record with the current request id and, inside a task, the task's id and name."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id() or "-"
        task = get_current_task()
        record.task_id = getattr(task.request, "id", None) if task else None
        record.task_name = task.name if task else None
        return True


class JsonLines(logging.Formatter):
    """One JSON object per line with a fixed set of fields.

    Only these fields leave the process: a record's `args` and `extra` (Celery puts task arguments there)
    never do, so conversation text cannot slip into the logs through them.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": record.processName,
            "pid": record.process,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", "-")
        if request_id != "-":
            entry["request_id"] = request_id
        task_id = getattr(record, "task_id", None)
        if task_id:
            entry["task_id"] = task_id
            entry["task_name"] = getattr(record, "task_name", None)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str | int = "INFO", log_format: str = "text") -> None:
    """Readable lines (or JSON lines) on stderr for the API, the workers and Beat; idempotent."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_convoflow", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler._convoflow = True  # type: ignore[attr-defined]
        handler.addFilter(RequestContext())
        root.addHandler(handler)
    handler.setFormatter(JsonLines() if log_format == "json" else logging.Formatter(FORMAT))
    root.setLevel(level)
    # Third-party chatter that would log request details at INFO.
    for noisy in ("httpx", "httpcore", "openai"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # The DashScope SDK logs every failed attempt at ERROR, with a traceback or the endpoint's message (which can
    # quote the user's text); the provider logs each retry and failure itself, safely. DASHSCOPE_LOGGING_LEVEL, the
    # SDK's own switch for debugging it, still works.
    if not os.environ.get(DASHSCOPE_LOGGING_LEVEL):
        logging.getLogger("dashscope").setLevel(logging.CRITICAL)
