"""How /health judges the figures it reads: thresholds from the settings, 0 meaning report only."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from convoflow.config import Settings
from convoflow.dispatch.inspection import QueueState
from convoflow.services.health import judge_beat, judge_persistence, judge_queues, judge_redis, judge_workers
from convoflow.services.pending import PersistenceLag
from convoflow.services.redis_memory import RedisMemory
from tests.utils.processes import PROJECT_ROOT


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_every_expected_queue_needs_a_consuming_worker() -> None:
    assert judge_workers(["database"], {"database": ["celery@a"]}).ok
    missing = judge_workers(["database", "workflow"], {"database": ["celery@a"]})
    assert not missing.ok and missing.detail == "no Celery worker consumes queue(s): workflow"
    assert missing.data == {"database": ["celery@a"], "workflow": []}
    nobody = judge_workers(["database"], {})
    assert not nobody.ok and "no Celery worker answered" in nobody.detail


def test_queue_depth_and_age_fail_past_their_limits_and_zero_means_report_only() -> None:
    deep = [QueueState("database", depth=11, oldest_age_seconds=5.0, age_known=True)]
    assert not judge_queues(settings(health_max_queue_depth=10), deep).ok
    assert judge_queues(settings(health_max_queue_depth=0), deep).ok
    old = [QueueState("database", depth=1, oldest_age_seconds=61.0, age_known=True)]
    verdict = judge_queues(settings(health_max_queue_age_seconds=60), old)
    assert not verdict.ok and verdict.detail == "database: oldest message waited 61.0s (limit 60.0s)"
    assert judge_queues(settings(health_max_queue_age_seconds=0), old).ok
    unknown = [QueueState("database", depth=3, oldest_age_seconds=None, age_known=False)]
    assert judge_queues(settings(), unknown).detail == "database: 3 waiting, age unknown on this broker"


def test_beat_is_judged_by_the_age_of_its_heartbeat_unless_not_required() -> None:
    required = settings(health_beat_max_age_seconds=30, beat_heartbeat_interval_seconds=5)
    assert judge_beat(required, 4.0).ok
    assert not judge_beat(required, 31.0).ok
    assert not judge_beat(required, None).ok
    assert judge_beat(settings(health_beat_max_age_seconds=0), None).ok


def test_persistence_lag_fails_past_its_limit() -> None:
    limit = settings(health_max_persistence_lag_seconds=10)
    assert judge_persistence(limit, PersistenceLag(pending=0, oldest_age_seconds=None)).ok
    assert judge_persistence(limit, PersistenceLag(pending=2, oldest_age_seconds=9.0)).ok
    late = judge_persistence(limit, PersistenceLag(pending=2, oldest_age_seconds=11.0))
    assert not late.ok and late.data == {"pending_turns": 2, "oldest_age_seconds": 11.0}
    assert judge_persistence(settings(health_max_persistence_lag_seconds=0), PersistenceLag(2, 1e6)).ok


def test_a_beat_limit_not_above_the_heartbeat_interval_is_refused() -> None:
    with pytest.raises(ValidationError):
        settings(health_beat_max_age_seconds=5, beat_heartbeat_interval_seconds=10)


def test_redis_fails_when_it_may_evict_or_is_fuller_than_the_limit_and_0_only_reports() -> None:
    mb = 1 << 20
    assert judge_redis(settings(), RedisMemory(500 * mb, 0, "allkeys-lru", True)).ok  # no limit: nothing is evicted
    assert not judge_redis(settings(), RedisMemory(1 * mb, 100 * mb, "volatile-lru", True)).ok
    full = RedisMemory(95 * mb, 100 * mb, "noeviction", True)
    assert not judge_redis(settings(), full).ok
    assert judge_redis(settings(health_max_redis_memory_percent=96), full).ok
    assert judge_redis(settings(health_max_redis_memory_percent=0), full).ok
    assert judge_redis(settings(health_max_redis_memory_percent=0), full).detail.endswith("(95%)")


def test_env_example_documents_every_operations_setting() -> None:
    example = (PROJECT_ROOT / ".env.example").read_text()
    for name in (
        "LOG_FORMAT",
        "HEALTH_MAX_QUEUE_DEPTH",
        "HEALTH_MAX_QUEUE_AGE_SECONDS",
        "HEALTH_MAX_PERSISTENCE_LAG_SECONDS",
        "HEALTH_MAX_REDIS_MEMORY_PERCENT",
        "HEALTH_BEAT_MAX_AGE_SECONDS",
        "BEAT_HEARTBEAT_INTERVAL_SECONDS",
        "WORKER_METRICS_PORT",
        "WORKER_METRICS_ADDRESS",
        "METRICS_DIR",
    ):
        assert f"\n{name}=" in example, name
