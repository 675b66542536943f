"""The logging set-up the API and the workers run (configure_logging), applied in the test process and undone."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from convoflow.logging_setup import configure_logging

# The loggers configure_logging changes: the root and the third-party ones it quiets.
_CHANGED = ("", "httpx", "httpcore", "openai", "dashscope")


@contextmanager
def service_logging() -> Iterator[None]:
    saved = [(logger, logger.level, logger.handlers[:]) for logger in map(logging.getLogger, _CHANGED)]
    try:
        configure_logging()
        yield
    finally:
        for logger, level, handlers in saved:
            logger.setLevel(level)
            logger.handlers[:] = handlers
