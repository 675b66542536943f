"""The pool a worker runs when its command line names none: WORKER_POOL, threads unless set otherwise.

Every task of the `database` queue waits on the database and every run on the model, so a thread pool in one
process does the work of a prefork pool at a third of its memory (a `-c 2` prefork worker is three processes,
each holding the whole import graph). Prefork stays one setting (or `-P prefork`) away for what only it does:
enforce TASK_TIME_LIMIT, and spread CPU-bound work over cores.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from convoflow.config import Settings

POOL_FLAGS = ("-P", "--pool")


def names_a_pool(argv: Sequence[str]) -> bool:
    """Whether the command line chooses the pool itself (`-P x`, `-Px`, `--pool x`, `--pool=x`)."""
    return any(arg in POOL_FLAGS or arg.startswith(("--pool=", "-P")) for arg in argv[1:])


def configured_pool(settings: Settings, argv: Sequence[str] | None = None) -> str | None:
    """WORKER_POOL, or None when the command line names a pool.

    Celery's CLI cannot tell `-P prefork` from its own default (prefork) and replaces both with a configured
    `worker_pool`; leaving the setting out when a pool is named keeps `-P prefork` meaning prefork.
    """
    return None if names_a_pool(sys.argv if argv is None else argv) else settings.worker_pool
