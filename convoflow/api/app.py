"""The FastAPI app factory: wires settings, the task gateway, the workflow and the routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from convoflow.api.errors import install_error_handlers
from convoflow.api.limits import BodySizeLimit
from convoflow.api.routes import health, history, run, runs, sessions, stream, tasks, web
from convoflow.config import Settings, get_settings
from convoflow.dispatch.gateway import TaskGateway
from convoflow.dispatch.recent import RecentTurns
from convoflow.logging_setup import configure_logging
from convoflow.services.chat import ChatService
from convoflow.services.history import SessionHistory
from convoflow.services.runs import RunService
from convoflow.web import STATIC_DIR
from convoflow.worker.app import get_celery_app
from convoflow.workflow import ConversationWorkflow, build_provider

logger = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    client = aioredis.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=5)
    gateway = TaskGateway(settings, get_celery_app(), client)
    workflow = ConversationWorkflow(build_provider(settings), settings)
    recent = RecentTurns(settings, client)
    app.state.gateway = gateway
    app.state.chat = ChatService(settings, gateway, recent, workflow)
    app.state.history = SessionHistory(settings, gateway, recent)
    app.state.runs = RunService(gateway)
    logger.info("convoflow API ready: provider=%s model=%s", settings.llm_provider, settings.model_name)
    try:
        yield
    finally:
        await gateway.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    app = FastAPI(
        title="convoflow",
        summary="Chat turns answered by an LLM workflow, kept in SQL by Celery workers.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    for module in (run, stream, runs, history, sessions, tasks, health):
        app.include_router(module.router)
    # The web page and its files are open: they hold no data, the page's script sends the API key.
    app.include_router(web.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    return app
