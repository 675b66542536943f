"""Settings: defaults, derived URLs, overrides and refusals."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from convoflow.config import DEFAULT_SQLITE_PATH, Settings
from convoflow.worker.app import celery_config


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_defaults_follow_the_seed() -> None:
    s = settings()
    assert (s.api_host, s.api_port) == ("0.0.0.0", 8000)
    assert s.broker_url == s.result_backend_url == "redis://localhost:6379/0"
    assert s.sqlalchemy_url == f"sqlite:///{DEFAULT_SQLITE_PATH}"
    assert "data" in DEFAULT_SQLITE_PATH.parts
    assert (s.task_soft_time_limit, s.task_time_limit) == (300, 600)
    assert s.retention_days == 30
    assert s.llm_provider == "offline"


def test_redis_settings_build_the_broker_url_with_an_escaped_password() -> None:
    s = settings(redis_host="cache", redis_port=6380, redis_db=2, redis_password="p@ss/word")
    assert s.broker_url == "redis://:p%40ss%2Fword@cache:6380/2"
    assert s.result_backend_url == s.broker_url


def test_explicit_celery_urls_override_redis_settings() -> None:
    s = settings(celery_broker_url="amqp://guest:guest@rabbit:5672//", celery_result_backend="redis://r:6379/1")
    assert s.broker_url.startswith("amqp://")
    assert s.result_backend_url == "redis://r:6379/1"


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_PORT", "9001")
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u@h/db")
    monkeypatch.setenv("TASK_SOFT_TIME_LIMIT", "30")
    monkeypatch.setenv("TASK_TIME_LIMIT", "60")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.api_port == 9001
    assert s.sqlalchemy_url == "postgresql+psycopg://u@h/db"
    config = celery_config(s)
    assert (config["task_soft_time_limit"], config["task_time_limit"]) == (30, 60)


def test_env_file_is_read(tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / ".env"  # type: ignore[operator]
    env_file.write_text("REDIS_HOST=redis.internal\nRETENTION_DAYS=7\n")
    s = Settings(_env_file=str(env_file))  # type: ignore[call-arg]
    assert (s.redis_host, s.retention_days) == ("redis.internal", 7)


def test_seed_db_type_mysql_builds_a_pymysql_url() -> None:
    s = settings(db_type="mysql", mysql_host="db", mysql_user="app", mysql_password="s3cret!", mysql_database="chat")
    assert s.sqlalchemy_url == "mysql+pymysql://app:s3cret%21@db:3306/chat?charset=utf8mb4"


@pytest.mark.parametrize(
    "values",
    [
        {"min_input_length": 10, "max_input_length": 5},
        {"task_soft_time_limit": 600, "task_time_limit": 600},
        {"api_port": 0},
        {"llm_provider": "nonsense"},
        {"llm_provider": "dashscope", "dashscope_api_key": ""},
        {"retention_cleanup_schedule": "every day"},
        {"retention_days": 0},
        {"read_result_expires": 20, "task_wait_timeout": 30},
        {"broker_quorum_queues": True},  # the broker is Redis
    ],
)
def test_inconsistent_settings_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        settings(**values)


def test_quorum_queues_on_rabbitmq_are_quorum_typed_on_topic_exchanges_with_publisher_confirms() -> None:
    classic = celery_config(settings(celery_broker_url="amqp://guest:guest@rabbit:5672//"))
    quorum = celery_config(settings(celery_broker_url="amqp://guest:guest@rabbit:5672//", broker_quorum_queues=True))
    assert all(not queue.queue_arguments for queue in classic["task_queues"])
    assert classic["broker_transport_options"]["confirm_publish"] is True
    assert [queue.name for queue in quorum["task_queues"]] == ["database", "workflow"]
    for queue in quorum["task_queues"]:
        assert queue.queue_arguments == {"x-queue-type": "quorum"}
        assert (queue.exchange.name, queue.exchange.type, queue.routing_key) == (queue.name, "topic", queue.name)
    assert "confirm_publish" not in celery_config(settings())["broker_transport_options"]


def test_celery_config_is_json_utc_late_ack_with_result_expiry() -> None:
    config = celery_config(settings(result_expires=3600, read_result_expires=120))
    assert config["task_serializer"] == config["result_serializer"] == "json"
    assert config["accept_content"] == ["json"]
    assert config["timezone"] == "UTC" and config["enable_utc"] is True
    assert config["result_expires"] == 3600
    assert config["read_result_expires"] == 120
    assert config["task_acks_late"] is True and config["task_reject_on_worker_lost"] is True
    assert {queue.name for queue in config["task_queues"]} == {"database", "workflow"}
    routes = config["task_routes"]
    assert routes.pop("convoflow.run_workflow") == {"queue": "workflow"}
    assert all(route["queue"] == "database" for route in routes.values())


def test_retention_schedule_is_configurable_and_can_be_switched_off() -> None:
    config = celery_config(settings(retention_cleanup_schedule="*/5 * * * *"))
    entry = config["beat_schedule"]["cleanup-expired-conversations"]
    assert entry["task"] == "convoflow.cleanup_expired_conversations"
    assert "*/5" in str(entry["schedule"])
    assert (
        celery_config(settings(retention_cleanup_schedule="2.5"))["beat_schedule"]["cleanup-expired-conversations"][
            "schedule"
        ]
        == 2.5
    )
    assert celery_config(settings(enable_retention_cleanup=False))["beat_schedule"] == {}


def test_api_keys_are_parsed_into_names_and_keys() -> None:
    s = settings(api_keys=" alice:k-1 , bob:k/2+= ")
    assert s.api_key_table == {"alice": "k-1", "bob": "k/2+="}
    assert settings().api_key_table == {}


@pytest.mark.parametrize(
    "api_keys",
    [
        "alice",  # no key
        "alice:",  # empty key
        ":key",  # empty name
        "alice:k1,,bob:k2",  # empty entry
        "alice:k1,alice:k2",  # duplicate name
        "alice:same,bob:same",  # one key for two names
        "al ice:k1",  # name with a space
        "alice:k 1",  # key with a space
        "alice:k\u00e91",  # key a client cannot send as a bearer token
    ],
)
def test_malformed_api_keys_are_refused(api_keys: str) -> None:
    with pytest.raises(ValidationError, match="API_KEYS"):
        settings(api_keys=api_keys)


@pytest.mark.parametrize(
    "key", ["changeme", "change-me-please-now", "short-but-real", "x" * 32, "your-api-key-here-123"]
)
def test_production_refuses_placeholder_api_keys(key: str) -> None:
    with pytest.raises(ValidationError, match="placeholder"):
        settings(environment="production", api_keys=f"alice:{key}")
    assert settings(environment="development", api_keys=f"alice:{key}").api_key_table == {"alice": key}


def test_production_accepts_random_api_keys_and_flower_passwords() -> None:
    s = settings(
        environment="production",
        api_keys="alice:9fQ2xLr7Tk1ZpV4sWc8N,bob:Jm3Hq6Yb0Ue5Ra2Ki9Lo",
        flower_basic_auth="ops:u7#Kd9!pQ2@xV5zR",
    )
    assert set(s.api_key_table) == {"alice", "bob"}
    assert s.flower_basic_auth_list == ["ops:u7#Kd9!pQ2@xV5zR"]


@pytest.mark.parametrize("value", ["ops", "ops:", "ops:a b", "ops:pw,ops:pw2", "o:p,q:p"])
def test_malformed_flower_basic_auth_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="FLOWER_BASIC_AUTH"):
        settings(flower_basic_auth=value)


def test_production_refuses_a_placeholder_flower_password() -> None:
    with pytest.raises(ValidationError, match="FLOWER_BASIC_AUTH"):
        settings(environment="production", flower_basic_auth="admin:changeme")


def test_refused_secrets_are_not_echoed_in_the_error() -> None:
    with pytest.raises(ValidationError) as refused:
        settings(environment="production", api_keys="alice:changeme-secret-value", redis_password="hunter2-redis")
    assert "changeme-secret-value" not in str(refused.value)
    assert "hunter2-redis" not in str(refused.value)


def test_secrets_stay_out_of_the_settings_repr() -> None:
    s = settings(api_keys="alice:key-in-repr", flower_basic_auth="ops:pw-in-repr", redis_password="redis-in-repr")
    assert not {"key-in-repr", "pw-in-repr", "redis-in-repr"} & set(repr(s).replace("'", " ").split())
    assert "in-repr" not in repr(s)


def test_previous_api_keys_map_to_current_names() -> None:
    s = settings(api_keys="alice:new-key", api_keys_previous="alice:old-key")
    assert s.previous_api_key_table == {"alice": "old-key"}


@pytest.mark.parametrize(
    ("current", "previous"),
    [("alice:new-key", "bob:old-key"), ("alice:same-key", "alice:same-key"), ("alice:new-key", "alice")],
    ids=["unknown-name", "key-still-current", "malformed"],
)
def test_inconsistent_previous_api_keys_are_refused(current: str, previous: str) -> None:
    with pytest.raises(ValidationError, match="API_KEYS_PREVIOUS"):
        settings(api_keys=current, api_keys_previous=previous)
