"""Store a batch of queued saves in one transaction, isolating turns that can never be stored."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import DBAPIError

from convoflow.config import Settings
from convoflow.db.errors import TRANSIENT_DB_ERRORS
from convoflow.db.repository import NewTurn
from convoflow.services.conversations import remove_turns, store_turns
from convoflow.services.deleted_sessions import answered_before_deletion
from convoflow.services.pending import record_stored

logger = logging.getLogger(__name__)

SAVE_PARAMETERS = ("user_input", "ai_response", "session_id", "turn_id", "timestamp", "status", "owner", "model")
# Accepted but not stored: they only travel with the turn (the request id tags the worker's log lines).
TRAVELLING_PARAMETERS = ("request_id",)


@dataclass(frozen=True)
class QueuedSave:
    """One save message: its task id and the arguments it was sent with."""

    task_id: str
    args: Sequence[Any]
    kwargs: Mapping[str, Any]


@dataclass
class BatchOutcome:
    """What became of each save of a batch, by task id."""

    stored: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    transient: list[str] = field(default_factory=list)


def _parse_time(value: Any) -> datetime:
    if value in (None, ""):
        return datetime.now(UTC)
    if not isinstance(value, str):
        raise TypeError("timestamp must be an ISO 8601 string")
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string")
    return value


def to_turn(save: QueuedSave) -> NewTurn:
    """The turn a save message describes; raises TypeError/ValueError for a message that can never be stored.

    Without a turn id (the seed's positional call) the task id is the idempotency key: a redelivered or
    retried message keeps its task id, so it still stores one row.
    """
    if len(save.args) > len(SAVE_PARAMETERS):
        raise TypeError(f"save takes at most {len(SAVE_PARAMETERS)} arguments")
    unknown = set(save.kwargs) - set(SAVE_PARAMETERS) - set(TRAVELLING_PARAMETERS)
    if unknown:
        raise TypeError(f"unexpected arguments: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = dict(zip(SAVE_PARAMETERS, save.args, strict=False))
    values.update((key, value) for key, value in save.kwargs.items() if key in SAVE_PARAMETERS)
    missing = [name for name in SAVE_PARAMETERS[:3] if name not in values]
    if missing:
        raise TypeError(f"missing arguments: {', '.join(missing)}")
    owner = values.get("owner")
    model = values.get("model")
    return NewTurn(
        turn_id=uuid.UUID(str(values.get("turn_id") or save.task_id)),
        session_id=_text("session_id", values["session_id"]),
        user_input=_text("user_input", values["user_input"]),
        ai_response=_text("ai_response", values["ai_response"]),
        timestamp=_parse_time(values.get("timestamp")),
        status=_text("status", values.get("status") or "complete"),
        owner=None if owner is None else _text("owner", owner),
        model=None if model is None else _text("model", model),
    )


def _result(turn: NewTurn, inserted: set[uuid.UUID]) -> dict[str, Any]:
    return {
        "success": True,
        "turn_id": str(turn.turn_id),
        "session_id": turn.session_id,
        "stored": turn.turn_id in inserted,
    }


def _dropped(turn: NewTurn) -> dict[str, Any]:
    """The result of a save whose session was deleted after the turn was answered: settled, not stored."""
    return {**_result(turn, set()), "dropped": "its session was deleted"}


def _describe(exc: BaseException) -> str:
    # Only the error class and the driver's first line: parameters are hidden by the engine.
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{exc.__class__.__name__}: {first_line}"[:300]


def save_batch(settings: Settings, saves: Sequence[QueuedSave]) -> BatchOutcome:
    """Store every storable turn of `saves`; says which failed for good and which should be retried."""
    outcome = BatchOutcome()
    turns: dict[str, NewTurn] = {}
    for save in saves:
        try:
            turns[save.task_id] = to_turn(save)
        except (TypeError, ValueError) as exc:
            outcome.failed[save.task_id] = f"{exc.__class__.__name__}: {exc}"
    dropped = answered_before_deletion(settings, list(turns.values()))
    for task_id, turn in list(turns.items()):
        if turn.turn_id in dropped:
            # Settled like a stored turn (result written, outbox left, message acknowledged), but not stored.
            outcome.stored[task_id] = _dropped(turn)
            del turns[task_id]
    if dropped:
        logger.info("dropped %d turns answered before their session was deleted", len(dropped))
    if not turns:
        return outcome
    try:
        inserted = store_turns(settings, list(turns.values()))
    except TRANSIENT_DB_ERRORS as exc:
        logger.warning("database unavailable for a batch of %d saves: %s", len(turns), exc.__class__.__name__)
        outcome.transient.extend(turns)
        return outcome
    except DBAPIError:
        # One bad turn fails the whole statement: store them one by one to find it.
        outcome = _save_one_by_one(settings, turns, outcome)
    else:
        record_stored(list(turns.values()), inserted)
        for task_id, turn in turns.items():
            outcome.stored[task_id] = _result(turn, inserted)
    _undo_if_deleted_meanwhile(
        settings, {task_id: turn for task_id, turn in turns.items() if task_id in outcome.stored}, outcome
    )
    return outcome


def _undo_if_deleted_meanwhile(settings: Settings, turns: Mapping[str, NewTurn], outcome: BatchOutcome) -> None:
    """Remove the turns just stored whose session was deleted while the batch was being stored.

    A delete that recorded its time after this batch looked it up, and ran its DELETE before this batch
    committed, could not see these rows; looking again after the commit finds its record, so they go now.
    """
    late = answered_before_deletion(
        settings, list(turns.values()), if_unreadable="a session deleted while the batch was stored may keep turns"
    )
    if not late:
        return
    try:
        remove_turns(settings, late)
    except DBAPIError as exc:
        logger.error(
            "%d turns of a session deleted meanwhile could not be removed: %s", len(late), exc.__class__.__name__
        )
        return
    logger.info("removed %d turns whose session was deleted while they were being stored", len(late))
    for task_id, turn in turns.items():
        if turn.turn_id in late:
            outcome.stored[task_id] = _dropped(turn)


def _save_one_by_one(settings: Settings, turns: Mapping[str, NewTurn], outcome: BatchOutcome) -> BatchOutcome:
    for task_id, turn in turns.items():
        try:
            inserted = store_turns(settings, [turn])
        except TRANSIENT_DB_ERRORS:
            outcome.transient.append(task_id)
        except DBAPIError as exc:
            logger.error("save %s can never be stored: %s", task_id, _describe(exc))
            outcome.failed[task_id] = _describe(exc)
        else:
            record_stored([turn], inserted)
            outcome.stored[task_id] = _result(turn, inserted)
    return outcome
