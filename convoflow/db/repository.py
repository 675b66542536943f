"""All SQL of convoflow: idempotent inserts, history reads and batched deletes of conversation turns."""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Integer, Row, Select, Table, and_, bindparam, delete, func, or_, select, text
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.orm import Session

from convoflow.db.models import ConversationTurn


@dataclass(frozen=True)
class NewTurn:
    """A turn as the API answered it, to be stored once."""

    turn_id: uuid.UUID
    session_id: str
    user_input: str
    ai_response: str
    timestamp: datetime
    status: str = "complete"
    owner: str | None = None
    model: str | None = None
    meta: dict[str, Any] | None = field(default=None)

    def as_row(self) -> dict[str, Any]:
        return {
            "turn_id": self.turn_id,
            "session_id": self.session_id,
            "user_input": self.user_input,
            "ai_response": self.ai_response,
            "timestamp": self.timestamp,
            "status": self.status,
            "owner": self.owner,
            "model": self.model,
            "meta": self.meta,
        }


def insert_turns(session: Session, turns: Sequence[NewTurn]) -> set[uuid.UUID]:
    """Insert the turns not stored yet, in one statement; returns the ids actually inserted.

    A turn id already present (a redelivered or retried save) is skipped, never duplicated, and
    the unique constraint makes this safe against concurrent workers too.
    """
    if not turns:
        return set()
    unique = {turn.turn_id: turn for turn in turns}
    rows = [turn.as_row() for turn in unique.values()]
    dialect = session.get_bind().dialect.name
    table = ConversationTurn.__table__
    assert isinstance(table, Table)
    if dialect == "postgresql":
        return _insert_unnest(session, rows)
    if dialect == "sqlite":
        insert = sqlite.insert(table)
        statement = insert.on_conflict_do_nothing(index_elements=["turn_id"]).returning(table.c.turn_id)
        return {row[0] for row in session.execute(statement, rows)}
    existing = set(session.scalars(select(ConversationTurn.turn_id).where(ConversationTurn.turn_id.in_(unique))))
    fresh = [row for row in rows if row["turn_id"] not in existing]
    if fresh:
        mysql_insert = mysql.insert(table)
        # A no-op update keeps a concurrent duplicate from failing the whole batch.
        session.execute(mysql_insert.on_duplicate_key_update(turn_id=mysql_insert.inserted.turn_id), fresh)
    return {row["turn_id"] for row in fresh}


# What a history page shows: plain rows, not ORM objects (a 50-turn page loads about twice as fast).
# The table's own columns, not the mapped class's attributes: statements of plain columns cost about half as much
# to build and to look up in SQLAlchemy's compiled cache, which is felt on every history page.
_TURNS = ConversationTurn.__table__.c
HISTORY_COLUMNS = (
    _TURNS.id,
    _TURNS.turn_id,
    _TURNS.session_id,
    _TURNS.user_input,
    _TURNS.ai_response,
    _TURNS.timestamp,
    _TURNS.status,
)


# PostgreSQL: one short statement with one array per column, instead of a VALUES list as long as the batch,
# which the driver would parse again for every batch (about a sixth of a bulk save's time).
_UNNEST_INSERT = text(
    "INSERT INTO conversation_turns"
    " (turn_id, session_id, user_input, ai_response, timestamp, status, owner, model, metadata, stored_at)"
    " SELECT t.*, now() FROM unnest("
    " CAST(:turn_id AS uuid[]), CAST(:session_id AS varchar[]), CAST(:user_input AS text[]),"
    " CAST(:ai_response AS text[]), CAST(:timestamp AS timestamptz[]), CAST(:status AS varchar[]),"
    " CAST(:owner AS varchar[]), CAST(:model AS varchar[]), CAST(:meta AS json[])) AS t"
    " ON CONFLICT (turn_id) DO NOTHING RETURNING turn_id"
)


def _insert_unnest(session: Session, rows: Sequence[dict[str, Any]]) -> set[uuid.UUID]:
    columns: dict[str, list[Any]] = {name: [row[name] for row in rows] for name in rows[0]}
    columns["meta"] = [None if meta is None else json.dumps(meta) for meta in columns["meta"]]
    return {row[0] for row in session.execute(_UNNEST_INSERT, columns)}


@lru_cache(maxsize=16)
def _history_statement(
    by_session: bool, by_owner: bool, before_time: bool, before_anchor: bool
) -> Select[*tuple[Any, ...]]:
    """The history SELECT of one shape, with bound parameters, built once per process."""
    query = select(*HISTORY_COLUMNS)
    if by_session:
        query = query.where(_TURNS.session_id == bindparam("session_id"))
    if by_owner:
        query = query.where(_TURNS.owner == bindparam("owner"))
    if before_time:
        query = query.where(_TURNS.timestamp < bindparam("before_timestamp"))
    if before_anchor:
        stamp = bindparam("anchor_timestamp", type_=_TURNS.timestamp.type)
        row_id = bindparam("anchor_id", type_=_TURNS.id.type)
        query = query.where((_TURNS.timestamp < stamp) | ((_TURNS.timestamp == stamp) & (_TURNS.id < row_id)))
    return query.order_by(_TURNS.timestamp.desc(), _TURNS.id.desc()).limit(bindparam("limit", type_=Integer))


def list_history(
    connection: Connection,
    *,
    limit: int,
    session_id: str | None = None,
    owner: str | None = None,
    before_turn_id: uuid.UUID | None = None,
    before_timestamp: datetime | None = None,
) -> list[Row[Any]]:
    """Turns newest first (rows of HISTORY_COLUMNS), optionally of one session and one owner, older than a turn.

    `before_timestamp` pages from a point in time instead (a turn the database does not hold yet).
    """
    params: dict[str, Any] = {"limit": limit, "session_id": session_id, "owner": owner}
    if before_timestamp is not None:
        params["before_timestamp"] = before_timestamp
    if before_turn_id is not None:
        anchor = connection.execute(select(_TURNS.timestamp, _TURNS.id).where(_TURNS.turn_id == before_turn_id)).first()
        if anchor is None:
            return []
        params["anchor_timestamp"], params["anchor_id"] = anchor
    query = _history_statement(
        session_id is not None, owner is not None, before_timestamp is not None, before_turn_id is not None
    )
    return list(connection.execute(query, params))


@dataclass(frozen=True)
class SessionSummary:
    """One session as the sessions listing shows it."""

    session_id: str
    turn_count: int
    first_activity: datetime
    last_activity: datetime


def list_sessions(
    connection: Connection,
    *,
    limit: int,
    owner: str | None = None,
    before: tuple[datetime, str] | None = None,
) -> list[SessionSummary]:
    """Sessions by last activity, newest first; `before` = (last_activity, session_id) of the previous page's end.

    Keyset paging over the aggregate: (last_activity, session_id) orders sessions totally, so pages never
    overlap or skip even while new turns arrive (a session that becomes active again moves to the front).
    """
    last_activity = func.max(ConversationTurn.timestamp)
    query = select(
        ConversationTurn.session_id,
        func.count(ConversationTurn.id),
        func.min(ConversationTurn.timestamp),
        last_activity,
    ).group_by(ConversationTurn.session_id)
    if owner is not None:
        query = query.where(ConversationTurn.owner == owner)
    if before is not None:
        stamp, session_id = before
        query = query.having(
            or_(last_activity < stamp, and_(last_activity == stamp, ConversationTurn.session_id < session_id))
        )
    query = query.order_by(last_activity.desc(), ConversationTurn.session_id.desc()).limit(limit)
    return [
        SessionSummary(session_id=row[0], turn_count=int(row[1]), first_activity=row[2], last_activity=row[3])
        for row in connection.execute(query)
    ]


def count_turns(session: Session, *, session_id: str | None = None, owner: str | None = None) -> int:
    query = select(func.count()).select_from(ConversationTurn)
    if session_id is not None:
        query = query.where(ConversationTurn.session_id == session_id)
    if owner is not None:
        query = query.where(ConversationTurn.owner == owner)
    return int(session.scalar(query) or 0)


def delete_batch_older_than(session: Session, cutoff: datetime, batch_size: int, owner: str | None = None) -> int:
    """Delete at most `batch_size` turns older than `cutoff` (of one owner, when given); returns how many went."""
    older = select(ConversationTurn.id).where(ConversationTurn.timestamp < cutoff)
    return _delete_batch(session, older, batch_size, owner)


def delete_batch_of_session(session: Session, session_id: str, batch_size: int, owner: str | None = None) -> int:
    """Delete at most `batch_size` turns of one session (and owner, when given)."""
    of_session = select(ConversationTurn.id).where(ConversationTurn.session_id == session_id)
    return _delete_batch(session, of_session, batch_size, owner)


def delete_turns(session: Session, turn_ids: Collection[uuid.UUID]) -> int:
    """Delete the turns with these turn ids; returns how many there were."""
    if not turn_ids:
        return 0
    result = session.execute(delete(ConversationTurn).where(ConversationTurn.turn_id.in_(list(turn_ids))))
    return int(getattr(result, "rowcount", 0) or 0)


def _delete_batch(session: Session, query: Select[int], batch_size: int, owner: str | None) -> int:
    """Delete the first `batch_size` turns by id that `query` selects (of one owner, when given); returns how many."""
    if owner is not None:
        query = query.where(ConversationTurn.owner == owner)
    ids = list(session.scalars(query.order_by(ConversationTurn.id).limit(batch_size)))
    if not ids:
        return 0
    session.execute(delete(ConversationTurn).where(ConversationTurn.id.in_(ids)))
    return len(ids)


def ping(connection: Connection) -> None:
    """A trivial round trip that fails when the database does not answer."""
    connection.execute(text("SELECT 1"))
