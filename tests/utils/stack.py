"""A convoflow stack for tests: settings in one namespace, real worker and API processes, a Celery client."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from celery import Celery

import convoflow.tasks.conversations
import convoflow.tasks.health
import convoflow.tasks.maintenance
import convoflow.tasks.runs
import convoflow.tasks.sessions  # noqa: F401  (registers the shared tasks with every app)
from convoflow.config import Settings
from convoflow.worker.app import create_celery_app
from tests.utils.processes import Process, free_port, start_api, start_flower, start_worker, wait_until
from tests.utils.services import delete_prefixed_keys


@dataclass
class Stack:
    """Everything one test configuration needs; `env` is what its processes see."""

    name: str
    redis_host: str
    redis_port: int
    database_url: str
    log_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    redis_password: str = ""
    prefix: str = field(default_factory=lambda: f"cft{uuid.uuid4().hex[:8]}:")
    processes: list[Process] = field(default_factory=list)
    api_url: str = ""
    _app: Celery | None = None

    @property
    def env(self) -> dict[str, str]:
        return {
            "REDIS_HOST": self.redis_host,
            "REDIS_PORT": str(self.redis_port),
            "REDIS_DB": "0",
            "REDIS_PASSWORD": self.redis_password,
            "REDIS_KEY_PREFIX": self.prefix,
            "DATABASE_URL": self.database_url,
            "LLM_PROVIDER": "offline",
            "ENVIRONMENT": "test",
            "TASK_WAIT_TIMEOUT": "15",
            # Most stacks run no Beat; the tests of the Beat heartbeat turn this on.
            "HEALTH_BEAT_MAX_AGE_SECONDS": "0",
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }

    @property
    def settings(self) -> Settings:
        values: dict[str, Any] = {key.lower(): value for key, value in self.env.items() if key != "PYTHONUNBUFFERED"}
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    @property
    def app(self) -> Celery:
        if self._app is None:
            self._app = create_celery_app(self.settings)
        return self._app

    def task(self, name: str) -> Any:
        return self.app.tasks[name]

    def start_worker(self, *extra: str, name: str = "worker", wait: bool = True) -> Process:
        process = start_worker(self.env, self.log_dir, *extra, name=f"{self.name}-{name}")
        self.processes.append(process)
        if wait:
            self.wait_for_worker(process)
        return process

    def wait_for_worker(self, process: Process, timeout: float = 60) -> None:
        def ready() -> bool:
            if not process.alive():
                raise RuntimeError(f"worker exited early:\n{process.log()}")
            return "ready." in process.log()

        wait_until(ready, timeout, what="the worker to be ready")

    def start_api(self, name: str = "api") -> Process:
        port = free_port()
        process = start_api(self.env, self.log_dir, port, name=f"{self.name}-{name}")
        self.processes.append(process)
        self.api_url = f"http://127.0.0.1:{port}"
        return process

    def start_flower(self, name: str = "flower") -> tuple[Process, str]:
        """`celery -A celery_app flower` on a free port; returns the process and Flower's URL."""
        port = free_port()
        process = start_flower(self.env, self.log_dir, port, name=f"{self.name}-{name}")
        self.processes.append(process)
        return process, f"http://127.0.0.1:{port}"

    def http(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.api_url, timeout=30, **kwargs)

    def call(self, name: str, *args: Any, timeout: float = 30, **kwargs: Any) -> Any:
        return self.task(name).apply_async(args=args, kwargs=kwargs).get(timeout=timeout)

    def stored_turns(self, session_id: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """What the database holds, read through the seed's history task."""
        result = self.call("celery_tasks.get_conversation_history_task", limit=limit, session_id=session_id)
        return list(result["history"])

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
        if self._app is not None:
            consumer = getattr(self._app.backend, "result_consumer", None)
            if consumer is not None:
                # AsyncResult.__del__ unsubscribes through this consumer whenever garbage collection runs, in
                # whatever thread: against a Redis that a fault test has since stopped, Celery then retries for
                # 20 s and more, freezing that thread (once the load client of the next test, for 77 s).
                with contextlib.suppress(Exception):
                    consumer.stop()
                consumer._pubsub = None
                consumer.subscribed_to.clear()
            with contextlib.suppress(Exception):
                self._app.close()
        delete_prefixed_keys(self.redis_host, self.redis_port, self.prefix, self.redis_password)


@contextlib.contextmanager
def api_alone(stack: Stack) -> Iterator[Stack]:
    """`stack`'s API with no worker, stopped (and its Redis keys removed) afterwards."""
    try:
        stack.start_api()
        yield stack
    finally:
        stack.stop()


@contextlib.contextmanager
def running(stack: Stack, *, api: bool = True, worker_args: tuple[str, ...] = ("-c", "2")) -> Iterator[Stack]:
    try:
        stack.start_worker(*worker_args)
        stack.call("celery_tasks.init_database_task", timeout=60)
        if api:
            stack.start_api()
        yield stack
    finally:
        stack.stop()
