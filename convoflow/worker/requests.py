"""The worker's task request: binds the message's request id while the main process logs the task's arrival.

Celery logs "Task ... received" in the worker's main process, before any task signal runs there; the
request id comes from the message headers (see convoflow.worker.telemetry) and is unbound again by the
task_received or task_revoked handler that Celery calls right after that line.
"""

from __future__ import annotations

from typing import Any

from celery import Task
from celery.worker.request import Request

from convoflow.observability.request_id import TASK_HEADER, bind_request_id


class TracedRequest(Request):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request_id = self.request_dict.get(TASK_HEADER)
        bind_request_id(request_id if isinstance(request_id, str) else None)


class ConvoflowTask(Task):  # type: ignore[type-arg]
    """Base of every convoflow task (Celery's `task_cls`): Celery's Task with the traced request."""

    Request = "convoflow.worker.requests:TracedRequest"
    # Whether the result backend reads a task's key before storing its result, so that a task delivered twice never
    # overwrites a SUCCESS (Celery's behaviour; see convoflow.worker.results.RedisResultBackend).
    result_precheck = True
    # Celery renders every return value (up to this many characters) for its "succeeded" log line, which
    # convoflow.logging_setup replaces with a summary, and for the task-succeeded event Flower shows. A history
    # page rendered to Celery's default 1,024 characters cost ~0.23 ms of worker CPU per read for text that is
    # thrown away or should not be on display; the leading flags and counts still fit.
    resultrepr_maxsize = 64


class ReadTask(ConvoflowTask):
    """A task that only reads: running it twice changes nothing, so its result is stored without the check."""

    result_precheck = False
