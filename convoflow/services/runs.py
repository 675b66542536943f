"""Background runs on the API side: queue a run on the `workflow` queue, cancel it (see `background_runs`)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import anyio
from celery import states

from convoflow.dispatch.gateway import TaskGateway
from convoflow.dispatch.states import friendly_state
from convoflow.errors import Conflict, NotFound
from convoflow.services.background_runs import cancel_key
from convoflow.tasks import names

logger = logging.getLogger(__name__)

RUN_KIND = "run"


@dataclass(frozen=True)
class QueuedRun:
    task_id: str
    session_id: str
    turn_id: uuid.UUID


class RunService:
    """Queues background runs and cancels them; their state is read like any task's (GET /task/{id})."""

    def __init__(self, gateway: TaskGateway) -> None:
        self.gateway = gateway
        self.settings = gateway.settings

    async def submit(self, user_input: str, session_id: str | None, owner: str | None = None) -> QueuedRun:
        """Queue a run; returns once the broker holds it. The turn id is fixed now, so its save is idempotent."""
        session_id = session_id or str(uuid.uuid4())
        turn_id = uuid.uuid4()
        task_id = await self.gateway.send(
            names.RUN_WORKFLOW,
            {"user_input": user_input, "session_id": session_id, "turn_id": str(turn_id), "owner": owner},
            kind=RUN_KIND,
            owner=owner,
        )
        return QueuedRun(task_id=task_id, session_id=session_id, turn_id=turn_id)

    async def cancel(self, task_id: str, owner: str | None = None) -> str:
        """Cancel a queued or running run: 'cancelled' when it had not started, else 'cancelling'.

        Raises NotFound for ids this service did not issue (to this owner), Conflict for a finished run
        or for a task that is not a run (a save is never cancelled: that would lose the turn).
        """
        issued = await self.gateway.lookup(task_id)
        if issued is None or not issued.visible_to(owner):
            raise NotFound(f"no task {task_id} was issued by this service (or its record expired)")
        if issued.kind != RUN_KIND:
            raise Conflict(f"only background runs (POST /runs) can be cancelled; this is a {issued.kind} task")
        status = await self.gateway.status(task_id)
        if status.status == states.REVOKED:
            return friendly_state(status.status)
        if status.status in states.READY_STATES:
            raise Conflict(f"the run has already {friendly_state(status.status)}", state=friendly_state(status.status))
        # The flag reaches every worker, also one that starts later (a revoke broadcast does not).
        await self.gateway.redis.set(cancel_key(self.settings, task_id), "1", ex=self.settings.result_expires)
        if status.status != states.PENDING:
            return "cancelling"  # the running run sees the flag within CANCEL_POLL_SECONDS
        # Not started: say so at once. A worker holding the message drops it on the revoke; one that gets
        # it later sees the flag and skips it.
        app = self.gateway.app
        reason = "cancelled by the client before it started"
        await anyio.to_thread.run_sync(lambda: app.control.revoke(task_id))
        await anyio.to_thread.run_sync(lambda: app.backend.mark_as_revoked(task_id, reason=reason))
        logger.info("run %s cancelled before it started", task_id)
        return friendly_state(states.REVOKED)
