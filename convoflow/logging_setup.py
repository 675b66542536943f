"""One logging setup for the API, the workers and Beat."""

from __future__ import annotations

import logging
import sys
from typing import Any

FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"


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


def configure_logging(level: str = "INFO") -> None:
    """Plain, readable lines on stderr; idempotent."""
    root = logging.getLogger()
    if not any(getattr(handler, "_convoflow", False) for handler in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
        handler._convoflow = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    # Third-party chatter that would log request details at INFO.
    for noisy in ("httpx", "httpcore", "openai", "dashscope"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
