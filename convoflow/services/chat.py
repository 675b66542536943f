"""Chat use cases on the API side: answer a turn and queue its save, recall a session's memory, delete history."""

from __future__ import annotations

import contextlib
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from convoflow.config import Settings
from convoflow.dispatch.batcher import SaveBatcher
from convoflow.dispatch.gateway import TaskGateway
from convoflow.dispatch.recent import RecentTurns, recalled_memory
from convoflow.errors import BrokerUnavailable, TaskFailed, TaskTimedOut
from convoflow.observability import metrics
from convoflow.services.turns import answered_turn
from convoflow.tasks import names
from convoflow.workflow import ConversationWorkflow, PriorTurn

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnsweredTurn:
    answer: str
    session_id: str
    turn_id: uuid.UUID
    task_id: str

    def as_json(self) -> dict[str, str]:
        return {
            "answer": self.answer,
            "session_id": self.session_id,
            "turn_id": str(self.turn_id),
            "task_id": self.task_id,
        }


class ChatService:
    """Runs the workflow for a turn and hands everything that touches the database to the workers."""

    def __init__(
        self,
        settings: Settings,
        gateway: TaskGateway,
        recent: RecentTurns,
        workflow: ConversationWorkflow,
        saves: SaveBatcher,
    ) -> None:
        self.settings = settings
        self.gateway = gateway
        self.recent = recent
        self.workflow = workflow
        self.saves = saves

    async def answer(self, user_input: str, session_id: str | None, owner: str | None = None) -> AnsweredTurn:
        """Answer `user_input`, then queue the turn's save; returns once the broker holds the save."""
        session_id = session_id or str(uuid.uuid4())
        prior = await self.prior_turns(session_id, owner)
        result = await self.workflow.run(user_input, prior)
        turn_id = uuid.uuid4()
        turn = answered_turn(
            user_input=user_input,
            answer=result.answer,
            session_id=session_id,
            turn_id=turn_id,
            owner=owner,
            model=result.model,
        )
        task_id = await self.record(turn)
        return AnsweredTurn(answer=result.answer, session_id=session_id, turn_id=turn_id, task_id=task_id)

    async def record(self, turn: dict[str, Any]) -> str:
        """Queue the save of an answered turn (see `answered_turn`); the batcher adds it to the session's memory.

        Returns the save task's id once the broker holds the save.
        """
        task_id = await self.saves.submit(turn, turn.get("owner"))
        metrics.turns_answered.inc()
        logger.info("turn %s answered by %s; save queued as task %s", turn["turn_id"], turn["model"], task_id)
        return task_id

    async def prior_turns(self, session_id: str, owner: str | None) -> list[PriorTurn]:
        """The session's last HISTORY_TURNS turns, oldest first, as the model's memory.

        A known session whose memory Redis no longer holds, or holds only in part since such a read failed, has it
        read from the database (see `recall`).
        """
        count = self.settings.history_turns
        if not self.settings.recalls_memory:
            newest = await self.recent.newest(owner, session_id, count)
        else:
            newest, read_back = await self.recent.memory(owner, session_id, count)
            if read_back:
                newest = (await self.recall(session_id, owner, newest))[:count]
        return [PriorTurn(item["user_input"], item["ai_response"]) for item in reversed(newest)]

    async def recall(
        self, session_id: str, owner: str | None, cached: list[dict[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        """The session's memory (newest first): the `cached` turns, then its newest stored turns not among them,
        read through the workers and cached again behind them.

        Redis keeps a session's memory for a day after its last turn; a session that goes on later would otherwise
        be answered as if it were new. Waits at most MEMORY_RECALL_TIMEOUT: a turn is answered without its memory
        rather than not at all when no worker or database answers in time, and the session is marked so that a
        later turn tries again (the turns cached meanwhile are not all it has). A new session is never recalled:
        only a session marked known by an earlier turn (for RETENTION_DAYS) is.
        """
        cached = cached or []
        try:
            page = await self.gateway.call(
                names.GET_HISTORY,
                {
                    "limit": self.settings.history_turns,
                    "session_id": session_id,
                    "owner": owner,
                    "before_turn_id": None,
                },
                kind="memory",
                owner=owner,
                timeout=self.settings.memory_recall_timeout,
                register=False,
            )
        except (TaskTimedOut, TaskFailed, BrokerUnavailable) as exc:
            metrics.memory_recalls.labels(outcome="failed").inc()
            logger.warning(
                "session memory not read from the database (%s): the turn is answered without it",
                exc.__class__.__name__,
            )
            with contextlib.suppress(RedisError):
                await self.recent.mark_incomplete(owner, session_id)
            return cached
        stored: list[dict[str, Any]] = page["history"]
        metrics.memory_recalls.labels(outcome="recalled" if stored else "empty").inc()
        memory, fresh = recalled_memory(cached, stored)
        await self.recent.refill(owner, session_id, fresh)
        return memory

    async def delete(self, *, days_old: int | None, session_id: str | None, owner: str | None = None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"session_id": session_id, "owner": owner}
        if days_old is not None:
            kwargs["days_old"] = days_old
        result = await self.gateway.call(names.DELETE_HISTORY, kwargs, kind="delete", owner=owner)
        if session_id is not None:
            await self.recent.forget(owner, session_id)
        return result
