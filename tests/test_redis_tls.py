"""REDIS_SSL: the API, the broker, the result backend and Beat's lock reach a TLS-only Redis, verifying it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from convoflow.config import Settings
from convoflow.worker.app import create_celery_app
from tests.conftest import make_stack
from tests.utils.conversations import assert_round_trip
from tests.utils.ops import wait_until_flower_lists_a_worker
from tests.utils.services import RedisServer, RedisTarget, running_private_redis
from tests.utils.stack import Stack, running


@pytest.fixture(scope="module")
def tls_redis() -> Iterator[RedisServer]:
    with running_private_redis(tls=True) as server:
        yield server


@pytest.fixture(scope="module")
def tls_stack(tls_redis: RedisServer, sqlite_url: str, log_dir: Path) -> Iterator[Stack]:
    assert tls_redis.tls is not None
    target = RedisTarget("127.0.0.1", tls_redis.port, tls_redis)
    stack = make_stack(
        "redis-tls",
        target,
        sqlite_url,
        log_dir,
        REDIS_SSL="true",
        REDIS_SSL_CA_CERTS=str(tls_redis.tls.ca),
        FLOWER_BASIC_AUTH="ops:flower-tls-1",
    )
    with running(stack, worker_args=("-c", "1")) as live:
        yield live


def test_run_and_history_round_trip_through_a_tls_only_redis(tls_stack: Stack) -> None:
    assert_round_trip(tls_stack)
    worker_log = tls_stack.processes[0].log()
    assert "Secure redis scheme specified (rediss) with no ssl options" not in worker_log


def test_the_retention_job_takes_its_redis_lock_over_tls(tls_stack: Stack) -> None:
    result = tls_stack.call("convoflow.cleanup_expired_conversations", timeout=60)
    assert result["success"] is True and result["skipped"] is False


def test_flower_reaches_the_workers_over_tls(tls_stack: Stack) -> None:
    _process, url = tls_stack.start_flower()
    wait_until_flower_lists_a_worker(url, ("ops", "flower-tls-1"))


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
