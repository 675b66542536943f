"""The launcher's broker choice and its embedded Valkey: loopback only, AOF on, queued messages survive a restart."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import redis

from convoflow.config import PROJECT_ROOT, Settings
from convoflow.launcher.broker import BrokerUnavailable, EmbeddedValkey, plan_broker, server_binary
from convoflow.launcher.supervisor import Supervisor
from tests.utils.processes import free_port, wait_until
from tests.utils.services import RedisTarget


def _settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def _run(server: EmbeddedValkey) -> Supervisor:
    supervisor = Supervisor(cwd=PROJECT_ROOT, out=io.StringIO(), stop_timeout=10)
    supervisor.start(server.spec())
    wait_until(server.answers, 15, what="the embedded Valkey")
    return supervisor


def test_embedded_broker_keeps_queued_messages_across_a_restart(tmp_path: Path) -> None:
    binary = server_binary()
    assert binary is not None
    server = EmbeddedValkey(binary, free_port(), tmp_path / "valkey", password="queue-secret")
    server.data_dir.mkdir()
    supervisor = _run(server)
    try:
        with redis.Redis(port=server.port, password=server.password) as client:
            client.lpush("database", "a queued task")
            assert client.config_get("appendonly") == {"appendonly": "yes"}
            assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
            assert client.config_get("bind")["bind"] == "127.0.0.1"
    finally:
        supervisor.stop_all()

    supervisor = _run(server)
    try:
        with redis.Redis(port=server.port, password=server.password) as client:
            assert client.lrange("database", 0, -1) == [b"a queued task"]
        with pytest.raises(redis.AuthenticationError), redis.Redis(port=server.port) as stranger:
            stranger.ping()
    finally:
        supervisor.stop_all()


def test_the_configured_redis_is_used_when_it_answers(redis_target: RedisTarget) -> None:
    plan = plan_broker(_settings(redis_host=redis_target.host, redis_port=redis_target.port))
    assert plan.embedded is None
    assert f"Redis at {redis_target.host}:{redis_target.port}" in plan.description


def test_an_embedded_broker_is_planned_on_redis_port_when_nothing_answers(tmp_path: Path) -> None:
    port = free_port()
    plan = plan_broker(_settings(redis_host="localhost", redis_port=port, data_dir=tmp_path))
    assert plan.embedded is not None
    assert (plan.embedded.port, plan.embedded.data_dir) == (port, tmp_path / "valkey")
    assert plan.child_env == {"REDIS_HOST": "127.0.0.1"}


def test_no_embedded_broker_when_a_broker_url_was_configured(tmp_path: Path) -> None:
    port = free_port()
    settings = _settings(
        redis_host="127.0.0.1", redis_port=port, data_dir=tmp_path, celery_broker_url=f"redis://127.0.0.1:{port}/1"
    )
    with pytest.raises(BrokerUnavailable, match=f"no Redis answers at 127.0.0.1:{port}.*CELERY_BROKER_URL is set"):
        plan_broker(settings)


@pytest.mark.parametrize("embedded", ["auto", "always"])
def test_no_embedded_broker_when_redis_is_reached_over_tls(tmp_path: Path, embedded: str) -> None:
    port = free_port()
    settings = _settings(
        redis_host="127.0.0.1", redis_port=port, data_dir=tmp_path, redis_ssl=True, embedded_broker=embedded
    )
    with pytest.raises(BrokerUnavailable, match=f"no Redis answers at 127.0.0.1:{port} over TLS"):
        plan_broker(settings)
