"""A turn answered as a stream of events: text deltas as the model writes, then the saved turn's ids.

The turn is saved once, when the answer is complete. When the consumer stops early (the client went
away), closing the stream saves what was said so far with status "interrupted". A failure ends the
stream with an error event instead; nothing is saved then.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
from redis.exceptions import RedisError

from convoflow.errors import ServiceError
from convoflow.services.chat import ChatService
from convoflow.services.idempotency import Claim, IdempotentRequests
from convoflow.services.turns import COMPLETE, INTERRUPTED, answered_turn
from convoflow.workflow import ModelError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamEvent:
    """One server-sent event: `token` {"delta"}, `done` {"answer", "session_id", "turn_id", "task_id"} or `error`."""

    event: Literal["token", "done", "error"]
    data: dict[str, Any] = field(default_factory=dict)


def _error(code: str, message: str, **details: Any) -> StreamEvent:
    # The same body the JSON error handlers give (convoflow.api.errors.error_body).
    return StreamEvent("error", {"error": code, "message": message, **details})


async def stream_turn(
    chat: ChatService, user_input: str, session_id: str | None, owner: str | None = None
) -> AsyncGenerator[StreamEvent, None]:
    """Answer `user_input` delta by delta. Close the iterator (aclose) to stop early: the partial turn is saved."""
    session_id = session_id or str(uuid.uuid4())
    turn_id = uuid.uuid4()
    deltas: list[str] = []
    settled = False  # saved, or failed: either way there is nothing left to save on close

    def turn(status: str) -> dict[str, Any]:
        return answered_turn(
            user_input=user_input,
            answer="".join(deltas),
            session_id=session_id,
            turn_id=turn_id,
            owner=owner,
            model=chat.settings.model_name,
            status=status,
        )

    try:
        prior = await chat.prior_turns(session_id, owner)
        async for delta in chat.workflow.stream(user_input, prior):
            deltas.append(delta)
            yield StreamEvent("token", {"delta": delta})
        # Once the model has finished, the save must not be cut short by the client leaving.
        with anyio.CancelScope(shield=True):
            task_id = await chat.record(turn(COMPLETE))
        settled = True
        yield StreamEvent(
            "done", {"answer": "".join(deltas), "session_id": session_id, "turn_id": str(turn_id), "task_id": task_id}
        )
    except ModelError as exc:
        settled = True
        logger.warning("model stream failed: %s", exc.log_text)
        yield _error("model_unavailable", f"the language model did not answer: {exc}", provider=exc.provider)
    except ServiceError as exc:
        settled = True
        yield _error(exc.code, exc.message, **exc.details)
    except RedisError as exc:
        settled = True
        address = chat.settings.redis_address
        logger.warning("Redis unreachable at %s: %s", address, exc.__class__.__name__)
        yield _error("redis_unavailable", f"Redis is unreachable at {address}; try again shortly")
    finally:
        if not settled:
            with anyio.CancelScope(shield=True):
                await _save_interrupted(chat, turn(INTERRUPTED))


async def _save_interrupted(chat: ChatService, turn: dict[str, Any]) -> None:
    try:
        task_id = await chat.record(turn)
    except Exception as exc:  # nobody is left to tell: log it
        logger.warning("could not save an interrupted turn: %s", getattr(exc, "message", exc.__class__.__name__))
        return
    logger.info("client left mid-stream: saved the partial turn (%d chars), task %s", len(turn["ai_response"]), task_id)


async def idempotent_stream(
    idempotency: IdempotentRequests, claim: Claim, events: AsyncGenerator[StreamEvent, None]
) -> AsyncGenerator[StreamEvent, None]:
    """`events` of a stream holding an Idempotency-Key: its `done` data is stored (for replays) before it is sent;
    an `error` event or a close before `done` (the client left) lets go of the key, so a retry runs anew."""
    answered = False
    try:
        async with aclosing(events):
            async for event in events:
                if event.event == "done":
                    # The turn is queued for saving: its replays must find it, whether or not this client stays.
                    # Recorded or not, the key is not let go of now: a retry would answer the turn a second time.
                    answered = True
                    with anyio.CancelScope(shield=True):
                        try:
                            await idempotency.finish(claim, event.data)
                        except RedisError as exc:
                            logger.warning(
                                "turn %s answered but its Idempotency-Key not recorded (the claim expires): %s",
                                event.data.get("turn_id"),
                                exc.__class__.__name__,
                            )
                yield event
    finally:
        if not answered:
            await idempotency.release(claim)


async def replayed_stream(response: dict[str, Any]) -> AsyncGenerator[StreamEvent, None]:
    """The stored answer of an earlier request with the same Idempotency-Key, as one `token` and its `done`."""
    yield StreamEvent("token", {"delta": str(response.get("answer", ""))})
    yield StreamEvent("done", dict(response))
