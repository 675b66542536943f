"""Dependencies shared by the routes, as `Annotated` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from convoflow.config import Settings
from convoflow.dispatch.gateway import TaskGateway
from convoflow.errors import UnsupportedMediaType
from convoflow.services.chat import ChatService
from convoflow.services.history import SessionHistory
from convoflow.services.runs import RunService


async def get_chat(request: Request) -> ChatService:
    chat: ChatService = request.app.state.chat
    return chat


async def get_history(request: Request) -> SessionHistory:
    history: SessionHistory = request.app.state.history
    return history


async def get_runs(request: Request) -> RunService:
    runs: RunService = request.app.state.runs
    return runs


async def get_owner() -> str | None:
    """Whose conversations a request may see: the API key's name once auth is on; None (everyone's) without it."""
    return None


async def get_gateway(request: Request) -> TaskGateway:
    gateway: TaskGateway = request.app.state.gateway
    return gateway


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def require_json(request: Request) -> None:
    """A JSON body must say so: anything else is answered 415, not guessed at."""
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType(f"expected Content-Type: application/json, got {media_type or 'none'}")


ChatDep = Annotated[ChatService, Depends(get_chat)]
GatewayDep = Annotated[TaskGateway, Depends(get_gateway)]
HistoryDep = Annotated[SessionHistory, Depends(get_history)]
OwnerDep = Annotated[str | None, Depends(get_owner)]
RunsDep = Annotated[RunService, Depends(get_runs)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
JsonBody = Depends(require_json)
