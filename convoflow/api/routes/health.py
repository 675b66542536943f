"""GET /health (readiness: 200 when every dependency is well, else 503 naming what failed) and GET /health/live."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from convoflow.api.deps import GatewayDep
from convoflow.api.schemas import CheckResult, HealthResponse, LivenessResponse
from convoflow.services.health import check_all

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
async def health(gateway: GatewayDep) -> JSONResponse:
    """Redis, broker, workers per queue, database, queue backlog, Beat's heartbeat and persistence lag."""
    checks = await check_all(gateway)
    healthy = all(check.ok for check in checks.values())
    body = HealthResponse(
        status="ok" if healthy else "unavailable",
        checks={name: CheckResult(ok=check.ok, detail=check.detail, data=check.data) for name, check in checks.items()},
    )
    return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)


@router.get("/health/live", response_model=LivenessResponse)
async def live() -> LivenessResponse:
    """The process is up; touches no dependency (for container liveness probes)."""
    return LivenessResponse(status="alive")
