"""The background run task: answer a turn on the `workflow` queue, then save it through the `database` queue."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from celery import Task, shared_task, states
from celery.exceptions import Ignore, SoftTimeLimitExceeded

from convoflow.config import get_settings
from convoflow.tasks import names
from convoflow.worker.queues import WORKFLOW_QUEUE

logger = logging.getLogger(__name__)


class RunFailed(Exception):
    """The run could not answer; the message is safe to show (no secrets, no user text)."""


# acks_late is off: a run can outlast the broker's visibility timeout, and a redelivered message would ask
# the model twice; the claim in `execute` drops such duplicates, and the run reports STARTED itself once
# it holds the claim (track_started would let a duplicate overwrite a finished run's state).
@shared_task(
    bind=True,
    name=names.RUN_WORKFLOW,
    queue=WORKFLOW_QUEUE,
    acks_late=False,
    track_started=False,
    throws=(RunFailed,),
)
def run_workflow_task(
    self: Task[Any, Any], user_input: str, session_id: str, turn_id: str, owner: str | None = None
) -> dict[str, Any]:
    """Run the workflow on `user_input` in `session_id`; returns the answer and the id of the queued save."""
    # Imported here, not at the top: the workflow (LangGraph, about 40 MB) is loaded only by the worker processes
    # that run one, not by every database worker and pool child.
    from convoflow.services import background_runs
    from convoflow.workflow import ModelError

    run = background_runs.BackgroundRun(
        run_id=str(self.request.id),
        user_input=user_input,
        session_id=session_id,
        turn_id=uuid.UUID(turn_id),
        owner=owner,
    )
    try:
        return {
            "success": True,
            **background_runs.execute(
                get_settings(), run, on_start=lambda: self.update_state(state=states.STARTED, meta={})
            ),
        }
    except background_runs.DuplicateDelivery:
        raise Ignore() from None
    except background_runs.RunCancelled:
        self.backend.mark_as_revoked(run.run_id, reason="cancelled by the client", request=self.request)
        raise Ignore() from None
    except ModelError as exc:
        logger.warning("run %s: model call failed: %s", run.run_id, exc.log_text)
        raise RunFailed(f"the language model did not answer: {exc}") from None
    except SoftTimeLimitExceeded:  # prefork only: a thread pool enforces no time limit
        limit = get_settings().task_soft_time_limit
        logger.warning("run %s: stopped by its time limit (TASK_SOFT_TIME_LIMIT, %d s)", run.run_id, limit)
        raise RunFailed(f"the run did not finish within its time limit of {limit} s") from None
