"""The FastAPI app factory: wires settings, the task gateway, the workflow and the routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from fastapi import FastAPI

from convoflow.api.errors import install_error_handlers
from convoflow.api.limits import BodySizeLimit
from convoflow.api.routes import health, history, run, tasks
from convoflow.config import Settings, get_settings
from convoflow.dispatch.batcher import SaveBatcher
from convoflow.dispatch.gateway import TaskGateway
from convoflow.dispatch.recent import RecentTurns
from convoflow.logging_setup import configure_logging
from convoflow.services.chat import ChatService
from convoflow.tasks.conversations import save_turns_task
from convoflow.worker.app import get_celery_app
from convoflow.workflow import ConversationWorkflow, build_provider

logger = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    client = aioredis.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=5)
    gateway = TaskGateway(settings, get_celery_app(), client)
    workflow = ConversationWorkflow(build_provider(settings), settings)
    app.state.gateway = gateway
    saves = SaveBatcher(gateway, save_turns_task, max_turns=settings.save_batch_size, linger=settings.api_save_linger)
    app.state.chat = ChatService(settings, gateway, RecentTurns(settings, client), workflow, saves)
    logger.info("convoflow API ready: provider=%s model=%s", settings.llm_provider, settings.model_name)
    try:
        yield
    finally:
        await saves.close()
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
    for module in (run, history, tasks, health):
        app.include_router(module.router)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    return app
