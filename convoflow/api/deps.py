"""Dependencies shared by the routes, as `Annotated` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from convoflow.config import Settings
from convoflow.dispatch.gateway import TaskGateway
from convoflow.errors import UnsupportedMediaType
from convoflow.services.chat import ChatService


def get_chat(request: Request) -> ChatService:
    chat: ChatService = request.app.state.chat
    return chat


def get_gateway(request: Request) -> TaskGateway:
    gateway: TaskGateway = request.app.state.gateway
    return gateway


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def require_api_key() -> None:
    """Guard of the operational endpoints (/metrics): a no-op until API keys (API_KEYS) are checked here."""


def require_json(request: Request) -> None:
    """A JSON body must say so: anything else is answered 415, not guessed at."""
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType(f"expected Content-Type: application/json, got {media_type or 'none'}")


ChatDep = Annotated[ChatService, Depends(get_chat)]
GatewayDep = Annotated[TaskGateway, Depends(get_gateway)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
JsonBody = Depends(require_json)
