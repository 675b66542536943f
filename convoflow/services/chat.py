"""Chat use cases on the API side: answer a turn and queue its save, read and delete history via tasks."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from convoflow.config import Settings
from convoflow.dispatch.gateway import TaskGateway
from convoflow.dispatch.recent import RecentTurns
from convoflow.observability import metrics
from convoflow.services import pending
from convoflow.tasks.conversations import (
    delete_conversation_history_task,
    get_conversation_history_task,
    save_conversation_task,
)
from convoflow.workflow import ConversationWorkflow, PriorTurn

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnsweredTurn:
    answer: str
    session_id: str
    turn_id: uuid.UUID
    task_id: str


class ChatService:
    """Runs the workflow for a turn and hands everything that touches the database to the workers."""

    def __init__(
        self, settings: Settings, gateway: TaskGateway, recent: RecentTurns, workflow: ConversationWorkflow
    ) -> None:
        self.settings = settings
        self.gateway = gateway
        self.recent = recent
        self.workflow = workflow

    async def answer(self, user_input: str, session_id: str | None, owner: str | None = None) -> AnsweredTurn:
        """Answer `user_input`, then queue the turn's save; returns once the broker holds the save."""
        session_id = session_id or str(uuid.uuid4())
        prior = await self._prior_turns(session_id, owner)
        result = await self.workflow.run(user_input, prior)
        turn_id = uuid.uuid4()
        answered_at = datetime.now(UTC)
        turn = {
            "user_input": user_input,
            "ai_response": result.answer,
            "session_id": session_id,
            "turn_id": str(turn_id),
            "timestamp": answered_at.isoformat(),
            "owner": owner,
            "model": result.model,
        }
        # Pending before queued: a worker that stores the turn at once must find something to remove.
        await pending.mark_pending(self.gateway.redis, self.settings, turn_id, answered_at)
        try:
            task_id = await self.gateway.send(save_conversation_task, turn, kind="save", owner=owner)
        except Exception:
            await pending.discard_pending(self.gateway.redis, self.settings, turn_id)
            raise
        metrics.turns_answered.inc()
        logger.info("turn %s answered by %s; save queued as task %s", turn_id, result.model, task_id)
        # Only a turn the broker accepted becomes part of the session's memory.
        await self.recent.push(owner, session_id, {**turn, "task_id": task_id})
        return AnsweredTurn(answer=result.answer, session_id=session_id, turn_id=turn_id, task_id=task_id)

    async def _prior_turns(self, session_id: str, owner: str | None) -> list[PriorTurn]:
        newest = await self.recent.newest(owner, session_id, self.settings.history_turns)
        return [PriorTurn(item["user_input"], item["ai_response"]) for item in reversed(newest)]

    async def history(
        self,
        *,
        limit: int,
        session_id: str | None = None,
        owner: str | None = None,
        before_turn_id: uuid.UUID | None = None,
    ) -> dict[str, Any]:
        return await self.gateway.call(
            get_conversation_history_task,
            {
                "limit": limit,
                "session_id": session_id,
                "owner": owner,
                "before_turn_id": str(before_turn_id) if before_turn_id else None,
            },
            kind="history",
            owner=owner,
        )

    async def delete(self, *, days_old: int | None, session_id: str | None, owner: str | None = None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"session_id": session_id, "owner": owner}
        if days_old is not None:
            kwargs["days_old"] = days_old
        result = await self.gateway.call(delete_conversation_history_task, kwargs, kind="delete", owner=owner)
        if session_id is not None:
            await self.recent.forget(owner, session_id)
        return result
