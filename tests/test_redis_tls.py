"""REDIS_SSL: the API, the broker, the result backend and Beat's lock reach a TLS-only Redis, verifying it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from convoflow.config import Settings
from convoflow.worker.app import create_celery_app
from tests.conftest import make_stack
from tests.utils.processes import wait_until
from tests.utils.services import RedisServer, RedisTarget, private_redis
from tests.utils.stack import Stack


@pytest.fixture(scope="module")
def tls_redis() -> Iterator[RedisServer]:
    server = private_redis(tls=True)
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="module")
def tls_stack(tls_redis: RedisServer, sqlite_url: str, log_dir: Path) -> Iterator[Stack]:
    assert tls_redis.tls is not None
    target = RedisTarget("127.0.0.1", tls_redis.port, tls_redis)
    stack = make_stack(
        "redis-tls", target, sqlite_url, log_dir, REDIS_SSL="true", REDIS_SSL_CA_CERTS=str(tls_redis.tls.ca)
    )
    stack.start_worker("-c", "1")
    stack.call("celery_tasks.init_database_task", timeout=60)
    stack.start_api()
    try:
        yield stack
    finally:
        stack.stop()


def test_run_and_history_round_trip_through_a_tls_only_redis(tls_stack: Stack) -> None:
    session = f"tls-{uuid.uuid4()}"
    with tls_stack.http() as client:
        run = client.post("/run", json={"user_input": "hello", "session_id": session})
        assert run.status_code == 200, run.text

        def stored() -> bool:
            page = client.get("/history", params={"session_id": session})
            assert page.status_code == 200, page.text
            return [t["turn_id"] for t in page.json()["history"]] == [run.json()["turn_id"]]

        wait_until(stored, 60, what="the turn to reach history")
        assert client.get(f"/task/{run.json()['task_id']}").json()["status"] == "SUCCESS"
        health = client.get("/health")
    assert health.status_code == 200, health.text
    assert "Secure redis scheme specified (rediss) with no ssl options" not in tls_stack.processes[0].log()


def test_the_retention_job_takes_its_redis_lock_over_tls(tls_stack: Stack) -> None:
    result = tls_stack.call("convoflow.cleanup_expired_conversations", timeout=60)
    assert result["success"] is True and result["skipped"] is False


def test_every_client_verifies_the_servers_certificate(tls_redis: RedisServer) -> None:
    # No REDIS_SSL_CA_CERTS: the system's CAs, which did not sign the test CA's certificate, so every client must
    # refuse the server. The broker is given as a bare rediss:// URL, from which kombu alone would connect without
    # checking the certificate.
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        redis_host="127.0.0.1",
        redis_port=tls_redis.port,
        redis_ssl=True,
        celery_broker_url=f"rediss://127.0.0.1:{tls_redis.port}/0",
    )
    app = create_celery_app(settings)
    try:
        with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
            redis.Redis.from_url(settings.redis_url, socket_connect_timeout=5).ping()
        with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
            app.backend.client.ping()  # type: ignore[attr-defined]
        with pytest.raises(Exception, match="certificate verify failed"), app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=0, timeout=5)
    finally:
        app.close()
