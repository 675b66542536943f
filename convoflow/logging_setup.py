"""One logging setup for the API, the workers and Beat."""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"


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
