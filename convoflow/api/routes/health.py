"""GET /health: 200 when broker, worker and database answer, else 503 naming what failed."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from convoflow.api.deps import GatewayDep
from convoflow.api.schemas import CheckResult, HealthResponse
from convoflow.services.health import check_all

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
async def health(gateway: GatewayDep) -> JSONResponse:
    checks = await check_all(gateway)
    healthy = all(check.ok for check in checks.values())
    body = HealthResponse(
        status="ok" if healthy else "unavailable",
        checks={name: CheckResult(ok=check.ok, detail=check.detail) for name, check in checks.items()},
    )
    return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)
