"""GET /health (readiness) and /health/live against real processes: every part well, and each part failing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from convoflow.observability.heartbeat import heartbeat_key
from tests.conftest import make_stack
from tests.utils.ops import Samples, health, parse_metrics, start_beat, value
from tests.utils.processes import free_port, wait_until
from tests.utils.services import RedisTarget, running_private_redis
from tests.utils.stack import Stack, running

ALL_CHECKS = {"redis", "broker", "workers", "database", "queues", "beat", "persistence"}


def failing(body: dict[str, Any]) -> set[str]:
    return {name for name, check in body["checks"].items() if not check["ok"]}


def check(stack: Stack, name: str) -> dict[str, Any]:
    result: dict[str, Any] = health(stack)[1]["checks"][name]
    return result


# --- Beat's heartbeat ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def beat_stack(sqlite_url: str, redis_target: RedisTarget, log_dir: Path) -> Iterator[Stack]:
    """Worker and API; Beat is required (heartbeat at most 3 s old) and each test starts its own Beat."""
    stack = make_stack(
        "health-beat",
        redis_target,
        sqlite_url,
        log_dir,
        HEALTH_BEAT_MAX_AGE_SECONDS="3",
        BEAT_HEARTBEAT_INTERVAL_SECONDS="0.5",
    )
    with running(stack, worker_args=("-c", "1")) as live:
        yield live


def test_readiness_is_200_when_every_part_is_well(beat_stack: Stack, tmp_path: Path) -> None:
    beat = start_beat(beat_stack, tmp_path)
    try:
        wait_until(lambda: health(beat_stack)[0] == 200, 60, interval=0.5, what="/health to answer 200")
        status, body = health(beat_stack)
    finally:
        beat.stop()
    assert status == 200, body
    assert body["status"] == "ok"
    assert set(body["checks"]) == ALL_CHECKS
    assert failing(body) == set()
    workers = body["checks"]["workers"]["data"]
    assert len(workers["database"]) == 1 and workers["database"][0].startswith("celery@")
    database_queue = body["checks"]["queues"]["data"]["database"]
    assert database_queue["age_known"] is True and database_queue["depth"] >= 0
    assert 0 <= body["checks"]["beat"]["data"]["last_tick_age_seconds"] < 3
    assert body["checks"]["persistence"]["data"]["pending_turns"] == 0


def test_readiness_is_503_naming_beat_when_its_heartbeat_goes_stale(beat_stack: Stack, tmp_path: Path) -> None:
    beat = start_beat(beat_stack, tmp_path)
    wait_until(lambda: check(beat_stack, "beat")["ok"], 60, interval=0.5, what="Beat's first heartbeat")
    beat.stop()
    wait_until(lambda: not check(beat_stack, "beat")["ok"], 30, interval=0.5, what="the heartbeat to go stale")
    status, body = health(beat_stack)
    assert status == 503
    assert body["status"] == "unavailable"
    assert failing(body) == {"beat"}
    assert "Beat's last tick was" in body["checks"]["beat"]["detail"]
    assert "limit 3.0s" in body["checks"]["beat"]["detail"]


def test_readiness_is_503_when_no_beat_ever_ticked(beat_stack: Stack) -> None:
    client = redis.Redis(host=beat_stack.redis_host, port=beat_stack.redis_port)
    try:
        client.delete(heartbeat_key(beat_stack.settings))
    finally:
        client.close()
    status, body = health(beat_stack)
    assert status == 503
    assert failing(body) == {"beat"}
    assert "has not recorded a heartbeat" in body["checks"]["beat"]["detail"]


# --- Redis down ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api_without_redis(sqlite_url: str, log_dir: Path) -> Iterator[Stack]:
    stack = make_stack("health-no-redis", RedisTarget("127.0.0.1", free_port(), None), sqlite_url, log_dir)
    stack.start_api()
    try:
        yield stack
    finally:
        stack.stop()


def test_liveness_answers_200_even_when_every_dependency_is_down(api_without_redis: Stack) -> None:
    with api_without_redis.http() as client:
        response = client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "alive"}


def test_readiness_is_503_naming_redis_and_what_depends_on_it_when_redis_is_down(api_without_redis: Stack) -> None:
    status, body = health(api_without_redis)
    assert status == 503
    assert {"redis", "broker", "workers", "database", "queues", "persistence"} <= failing(body)
    address = f"127.0.0.1:{api_without_redis.redis_port}"
    assert address in body["checks"]["redis"]["detail"]
    assert str(api_without_redis.redis_port) in body["checks"]["persistence"]["detail"]


def test_metrics_still_answer_with_the_unreadable_dependencies_marked_down(api_without_redis: Stack) -> None:
    with api_without_redis.http() as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    samples = parse_metrics(response.text)
    assert value(samples, "convoflow_dependency_up", dependency="redis") == 0
    assert value(samples, "convoflow_dependency_up", dependency="broker") == 0
    assert not any(name == "convoflow_queue_depth" for name, _ in samples)


# --- Redis's memory: an evicting Redis, a nearly full one -------------------------------------------------


@pytest.fixture(scope="module")
def own_redis_api(sqlite_url: str, log_dir: Path) -> Iterator[tuple[Stack, redis.Redis]]:
    """An API on a Redis of its own, whose memory settings the tests change (no worker: only `redis` is judged)."""
    with running_private_redis() as server:
        stack = make_stack("health-redis-memory", RedisTarget("127.0.0.1", server.port, server), sqlite_url, log_dir)
        stack.start_api()
        client = redis.Redis(port=server.port)
        try:
            yield stack, client
        finally:
            client.close()
            stack.stop()


def test_redis_check_reports_memory_and_fails_on_an_evicting_or_nearly_full_redis(
    own_redis_api: tuple[Stack, redis.Redis],
) -> None:
    stack, client = own_redis_api
    well = check(stack, "redis")
    assert well["ok"], well
    assert well["data"]["used_memory_bytes"] > 0 and well["data"]["maxmemory_bytes"] == 0
    assert (well["data"]["maxmemory_policy"], well["data"]["aof_enabled"]) == ("noeviction", False)
    assert "AOF off" in well["detail"]
    samples = scrape_metrics(stack)
    assert value(samples, "convoflow_redis_used_memory_bytes") > 0
    assert value(samples, "convoflow_dependency_up", dependency="redis") == 1

    try:
        client.config_set("maxmemory", str(1 << 30))
        client.config_set("maxmemory-policy", "allkeys-lru")
        evicting = check(stack, "redis")
        assert not evicting["ok"]
        assert "maxmemory-policy allkeys-lru" in evicting["detail"] and "noeviction" in evicting["detail"]
        assert value(scrape_metrics(stack), "convoflow_redis_maxmemory_bytes") == 1 << 30

        client.config_set("maxmemory-policy", "noeviction")
        assert check(stack, "redis")["ok"]
        used = int(client.info("memory")["used_memory"])
        client.config_set("maxmemory", str(int(used * 1.02)))
        full = check(stack, "redis")
        assert not full["ok"]
        assert "nearly full" in full["detail"] and "(limit 90%)" in full["detail"]
        assert full["data"]["used_percent"] > 90
    finally:
        client.config_set("maxmemory", "0")
    assert check(stack, "redis")["ok"]


def scrape_metrics(stack: Stack) -> Samples:
    with stack.http() as client:
        return parse_metrics(client.get("/metrics").text)


# --- No worker: backlog, queue age, persistence lag --------------------------------------------------


@pytest.fixture(scope="module")
def idle_stack(sqlite_url: str, redis_target: RedisTarget, log_dir: Path) -> Iterator[Stack]:
    """API and a worker that is stopped once the schema exists; age and lag limits of one second."""
    stack = make_stack(
        "health-idle",
        redis_target,
        sqlite_url,
        log_dir,
        HEALTH_MAX_QUEUE_AGE_SECONDS="1",
        HEALTH_MAX_PERSISTENCE_LAG_SECONDS="1",
    )
    with running(stack, worker_args=("-c", "1")) as live:
        assert health(live)[0] == 200
        live.processes[0].stop()
        yield live


def _run(stack: Stack, count: int) -> list[str]:
    session = f"idle-{uuid.uuid4()}"
    with stack.http() as client:
        responses = [client.post("/run", json={"user_input": f"turn {i}", "session_id": session}) for i in range(count)]
    assert all(response.status_code == 200 for response in responses)
    return [response.json()["turn_id"] for response in responses]


def test_readiness_names_the_queue_no_worker_consumes_once_the_worker_stops(idle_stack: Stack) -> None:
    status, body = health(idle_stack)
    assert status == 503
    assert {"workers", "database"} <= failing(body)
    assert "no Celery worker" in body["checks"]["workers"]["detail"]
    assert "database" in body["checks"]["workers"]["detail"]
    assert body["checks"]["database"]["detail"] == "not checked: no worker consumes the 'database' queue"
    assert body["checks"]["redis"]["ok"] and body["checks"]["broker"]["ok"]


def test_queue_depth_and_oldest_age_are_reported_while_saves_wait(idle_stack: Stack) -> None:
    before = check(idle_stack, "queues")["data"]["database"]["depth"]
    _run(idle_stack, 3)
    queue = check(idle_stack, "queues")["data"]["database"]
    assert queue["depth"] == before + 3
    assert queue["age_known"] is True and queue["oldest_age_seconds"] >= 0
    wait_until(lambda: not check(idle_stack, "queues")["ok"], 30, interval=0.5, what="the oldest save to be old")
    detail = check(idle_stack, "queues")["detail"]
    assert "database: oldest message waited" in detail and "limit 1.0s" in detail


def test_persistence_lag_grows_while_no_worker_stores(idle_stack: Stack) -> None:
    _run(idle_stack, 1)
    first = check(idle_stack, "persistence")["data"]
    assert first["pending_turns"] >= 1
    wait_until(
        lambda: check(idle_stack, "persistence")["data"]["oldest_age_seconds"] > first["oldest_age_seconds"],
        30,
        interval=0.2,
        what="the lag to grow",
    )
    wait_until(lambda: not check(idle_stack, "persistence")["ok"], 30, interval=0.5, what="the lag to pass 1 s")
    assert "not stored yet" in check(idle_stack, "persistence")["detail"]


def test_a_returning_worker_clears_the_backlog_and_readiness_recovers(idle_stack: Stack) -> None:
    turn_ids = _run(idle_stack, 2)
    idle_stack.start_worker("-c", "1", name="worker-again")
    wait_until(lambda: health(idle_stack)[0] == 200, 60, interval=0.5, what="/health to recover")
    body = health(idle_stack)[1]
    assert body["checks"]["persistence"]["data"] == {"pending_turns": 0, "oldest_age_seconds": None}
    assert body["checks"]["queues"]["data"]["database"]["depth"] == 0
    stored = {turn["turn_id"] for turn in idle_stack.stored_turns()}
    assert set(turn_ids) <= stored
