"""GET /metrics: Prometheus text of the API processes' metrics and of the backlog read at scrape time."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Response

from convoflow.api.deps import GatewayDep
from convoflow.observability.backlog import read_backlog
from convoflow.observability.exposition import CONTENT_TYPE, render

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text exposition format"}},
)
async def metrics(gateway: GatewayDep) -> Response:
    """Requests, turns, model calls and the backlog (queue depth and age, persistence lag), for Prometheus."""
    backlog = await read_backlog(gateway)
    body = await anyio.to_thread.run_sync(render, [backlog])
    return Response(content=body, media_type=CONTENT_TYPE)
