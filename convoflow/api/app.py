"""The FastAPI app factory: wires settings, the task gateway, the workflow and the routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from convoflow.api.deps import RequireApiKey
from convoflow.api.errors import install_error_handlers
from convoflow.api.limits import BodySizeLimit, RequestHeadLimit
from convoflow.api.responses import error_responses
from convoflow.api.routes import docs, health, history, metrics, run, runs, sessions, stream, tasks, web
from convoflow.api.security import ApiKeyring
from convoflow.api.telemetry import RequestTelemetry
from convoflow.config import Settings, get_settings
from convoflow.dispatch.batcher import SaveBatcher
from convoflow.dispatch.gateway import TaskGateway
from convoflow.dispatch.recent import RecentTurns
from convoflow.heap import collect_young_less_often, freeze_startup_heap
from convoflow.logging_setup import configure_logging
from convoflow.services.chat import ChatService
from convoflow.services.history import SessionHistory
from convoflow.services.idempotency import IdempotentRequests
from convoflow.services.redis_client import reconnect_once
from convoflow.services.runs import RunService
from convoflow.tasks import names
from convoflow.web import STATIC_DIR
from convoflow.worker.app import get_celery_app
from convoflow.workflow import ConversationWorkflow, build_provider

logger = logging.getLogger(__name__)

# Redis connections of one API process (the result listener holds one), and how long a request waits for one.
REDIS_CONNECTIONS = 64
REDIS_POOL_WAIT_SECONDS = 5


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    # A bounded pool that makes a request wait for a free connection: redis-py's default pool fails at once
    # (MaxConnectionsError, a 503) when more than 100 requests use Redis at the same moment.
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=REDIS_CONNECTIONS,
        timeout=REDIS_POOL_WAIT_SECONDS,
        socket_connect_timeout=2,
        socket_timeout=5,
        # After a Redis restart each pooled connection would fail its next command (a 503). What the API sends is
        # safe to send twice: SETs and scripts that check their own claim, saves and runs a worker runs once.
        retry=reconnect_once(),
    )
    client = aioredis.Redis.from_pool(pool)  # the client owns the pool: closing it closes the pool
    gateway = TaskGateway(settings, get_celery_app(), client)
    workflow = ConversationWorkflow(build_provider(settings), settings)
    recent = RecentTurns(settings, client)
    app.state.gateway = gateway
    saves = SaveBatcher(
        gateway,
        names.SAVE_TURNS,
        max_turns=settings.save_batch_size,
        linger=settings.api_save_linger,
        on_queued=recent.remember_queued,
    )
    app.state.chat = ChatService(settings, gateway, recent, workflow, saves)
    app.state.history = SessionHistory(settings, gateway, recent)
    app.state.runs = RunService(gateway)
    app.state.idempotency = IdempotentRequests(settings, client)
    if not app.state.keyring.enabled:
        logger.warning("API_KEYS is not set: the API is open to anyone who can reach it")
    frozen = freeze_startup_heap()
    young = collect_young_less_often()
    logger.info(
        "convoflow API ready: provider=%s model=%s (%d startup objects frozen out of the garbage collector; "
        "young collections every %d allocations)",
        settings.llm_provider,
        settings.model_name,
        frozen,
        young,
    )
    try:
        yield
    finally:
        await saves.close()
        await gateway.close()
        await workflow.aclose()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_format)
    app = FastAPI(
        title="convoflow",
        summary="Chat turns answered by an LLM workflow, kept in SQL by Celery workers.",
        version="0.1.0",
        lifespan=lifespan,
        # Served by routes.docs instead, behind the API key like every other endpoint.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.keyring = ApiKeyring(settings.api_key_table, settings.previous_api_key_table)
    install_error_handlers(app)
    # /health and /health/live answer anyone (load balancers, orchestrators), and so do the web page and its files
    # (they hold no data: the page's script sends the key); everything else needs a key when API_KEYS is set,
    # /metrics included.
    app.include_router(health.router)
    app.include_router(web.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for module in (run, stream, runs, history, sessions, tasks, docs, metrics):
        app.include_router(module.router, dependencies=[RequireApiKey], responses=error_responses(401))
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(RequestHeadLimit, max_url_bytes=settings.max_url_bytes)
    # Outermost: refused requests get an id and are counted too.
    app.add_middleware(RequestTelemetry)
    return app
