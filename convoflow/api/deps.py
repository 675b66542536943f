"""Dependencies shared by the routes, as `Annotated` aliases."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from convoflow.api.security import ApiKeyring
from convoflow.config import Settings
from convoflow.dispatch.gateway import TaskGateway
from convoflow.errors import Unauthorized, UnsupportedMediaType
from convoflow.services.chat import ChatService
from convoflow.services.history import SessionHistory
from convoflow.services.idempotency import IdempotentRequests
from convoflow.services.runs import RunService

logger = logging.getLogger(__name__)

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="A key from API_KEYS, as `Authorization: Bearer <key>` (only when the service sets API_KEYS).",
)


async def get_chat(request: Request) -> ChatService:
    chat: ChatService = request.app.state.chat
    return chat


async def get_history(request: Request) -> SessionHistory:
    history: SessionHistory = request.app.state.history
    return history


async def get_runs(request: Request) -> RunService:
    runs: RunService = request.app.state.runs
    return runs


async def get_gateway(request: Request) -> TaskGateway:
    gateway: TaskGateway = request.app.state.gateway
    return gateway


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_idempotency(request: Request) -> IdempotentRequests:
    idempotency: IdempotentRequests = request.app.state.idempotency
    return idempotency


async def current_owner(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
) -> str | None:
    """The name of the caller's API key; None when API_KEYS is unset (the service runs open).

    Raises 401 for a missing or unknown key. The presented key is never logged.
    """
    keyring: ApiKeyring = request.app.state.keyring
    if not keyring.enabled:
        return None
    if credentials is None:
        logger.warning("refused %s %s: no Bearer API key", request.method, request.url.path)
        raise Unauthorized("this endpoint needs an API key: send Authorization: Bearer <key>")
    owner = keyring.owner_of(credentials.credentials)
    if owner is None:
        logger.warning("refused %s %s: unknown API key", request.method, request.url.path)
        raise Unauthorized("the API key is not valid")
    return owner


async def require_json(request: Request) -> None:
    """A JSON body must say so: anything else is answered 415, not guessed at."""
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType(f"expected Content-Type: application/json, got {media_type or 'none'}")


ChatDep = Annotated[ChatService, Depends(get_chat)]
GatewayDep = Annotated[TaskGateway, Depends(get_gateway)]
HistoryDep = Annotated[SessionHistory, Depends(get_history)]
RunsDep = Annotated[RunService, Depends(get_runs)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
IdempotencyDep = Annotated[IdempotentRequests, Depends(get_idempotency)]
OwnerDep = Annotated[str | None, Depends(current_owner)]
RequireApiKey = Depends(current_owner)
JsonBody = Depends(require_json)
