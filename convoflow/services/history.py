"""Read-your-writes history: the database's page merged with the session's answered turns not stored yet.

An answered turn is cached in the session's Redis list and waits in the outbox until a worker has stored
it (convoflow.services.outbox). A history page of one session is the database's page plus the cached
turns still in the outbox (`"persisted": false`), newest first, each turn once: when both have a turn,
the database's copy wins. A cached turn that left the outbox but is not in the database page is not
listed (it is on another page, or was deleted). Listing all sessions comes from the database only.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from convoflow.config import Settings
from convoflow.dispatch.gateway import TaskGateway
from convoflow.dispatch.publisher import BeforePush
from convoflow.dispatch.recent import RecentSnapshot, RecentTurns, parse_snapshot
from convoflow.errors import BrokerUnavailable, TaskTimedOut
from convoflow.tasks import names


@dataclass(frozen=True)
class HistoryPage:
    """Turns newest first; `partial` when the database did not answer and only cached turns are listed."""

    turns: list[dict[str, Any]]
    partial: bool = False


def _time(item: dict[str, Any]) -> datetime:
    stamp = datetime.fromisoformat(str(item["timestamp"]))
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _cached_item(turn: dict[str, Any], persisted: bool) -> dict[str, Any]:
    return {
        "id": None,
        "turn_id": turn["turn_id"],
        "session_id": turn["session_id"],
        "user_input": turn["user_input"],
        "ai_response": turn["ai_response"],
        "timestamp": turn["timestamp"],
        "status": turn.get("status", "complete"),
        "persisted": persisted,
    }


def _newest_first(items: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    return sorted(items, key=lambda item: (_time(item), item["id"] or 0), reverse=True)[:limit]


@dataclass(frozen=True)
class _Window:
    """Which cached turns fall on the requested page, and how to ask the database for the rest of it."""

    cached: list[dict[str, Any]]
    db_before: dict[str, str | None]


def _window(snapshot: RecentSnapshot, before: uuid.UUID | None) -> _Window:
    unique: dict[str, dict[str, Any]] = {}
    for turn in snapshot.turns:  # newest first; a redelivered run may have cached a turn twice
        unique.setdefault(str(turn["turn_id"]), turn)
    if before is None:
        return _Window(list(unique.values()), {})
    anchor = unique.get(str(before))
    if anchor is None:
        # The anchor is older than every cached turn (the list keeps the newest), so none of them is older still.
        return _Window([], {"before_turn_id": str(before)})
    older = [turn for turn in unique.values() if _time(turn) < _time(anchor)]
    if str(before) not in snapshot.pending:
        return _Window(older, {"before_turn_id": str(before)})
    # The database does not hold the anchor yet: page from its time instead.
    return _Window(older, {"before_timestamp": str(anchor["timestamp"])})


class SessionHistory:
    """Pages of history as a client that has just been answered expects them."""

    def __init__(self, settings: Settings, gateway: TaskGateway, recent: RecentTurns) -> None:
        self.settings = settings
        self.gateway = gateway
        self.recent = recent

    async def page(
        self,
        *,
        limit: int,
        session_id: str | None = None,
        owner: str | None = None,
        before: uuid.UUID | None = None,
    ) -> HistoryPage:
        """Up to `limit` turns newest first, older than turn `before` when given."""
        if session_id is None:
            stored = await self._stored(limit, None, owner, {"before_turn_id": str(before) if before else None})
            return HistoryPage(stored)
        try:
            snapshot, stored = await self._snapshot_then_stored(limit, session_id, owner, before)
        except (TaskTimedOut, BrokerUnavailable):
            # The database cannot list the stored turns now: the cache's copies of them are better than nothing.
            snapshot = await self.recent.snapshot(owner, session_id, stored_too=True)
            window = _window(snapshot, before)
            if not window.cached:
                raise
            # No worker answered: list what the cache knows rather than nothing, and say so.
            cached = [_cached_item(turn, turn["turn_id"] not in snapshot.pending) for turn in window.cached]
            return HistoryPage(_newest_first(cached, limit), partial=True)
        window = _window(snapshot, before)
        merged = {str(item["turn_id"]): item for item in stored}
        for turn in window.cached:
            if turn["turn_id"] in snapshot.pending and turn["turn_id"] not in merged:
                merged[turn["turn_id"]] = _cached_item(turn, persisted=False)
        return HistoryPage(_newest_first(list(merged.values()), limit))

    async def _snapshot_then_stored(
        self, limit: int, session_id: str, owner: str | None, before: uuid.UUID | None
    ) -> tuple[RecentSnapshot, list[dict[str, Any]]]:
        """The session's cached turns not stored yet, then the database's page.

        Redis first, the database second: a turn that left the outbox before the snapshot was committed before
        it, so the database read that follows has it; one still in the outbox is listed from the cache. Only the
        turns not stored yet (and the page's anchor) are needed to merge with the database's page.
        """
        if before is None:
            # A first page asks the database for no anchor: the snapshot goes in the round trip that queues the read.
            replies, stored = await self._stored_after(
                lambda pipe: self.recent.queue_snapshot(pipe, owner, session_id), limit, session_id, owner, {}
            )
            return parse_snapshot(replies[0]), stored
        snapshot = await self.recent.snapshot(owner, session_id, anchor=str(before))
        return snapshot, await self._stored(limit, session_id, owner, _window(snapshot, before).db_before)

    async def _stored(
        self, limit: int, session_id: str | None, owner: str | None, before: dict[str, str | None]
    ) -> list[dict[str, Any]]:
        _replies, stored = await self._stored_after(None, limit, session_id, owner, before)
        return stored

    async def _stored_after(
        self,
        first: BeforePush | None,
        limit: int,
        session_id: str | None,
        owner: str | None,
        before: dict[str, str | None],
    ) -> tuple[list[Any], list[dict[str, Any]]]:
        """The database's page, read by a worker; Redis commands `first` queues run just before the read is queued."""
        replies, result = await self.gateway.call_after(
            first,
            names.GET_HISTORY,
            {"limit": limit, "session_id": session_id, "owner": owner, **before},
            kind="history",
            owner=owner,
            register=False,
        )
        return replies, list(result["history"])
