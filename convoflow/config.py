"""The one typed settings object: every knob of convoflow, read from the environment and `.env`."""

from __future__ import annotations

import re
import ssl
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"
DEFAULT_SQLITE_PATH = DEFAULT_DATA_DIR / "convoflow.db"

# Names of API keys and Flower users: they show up in the database (turn owner) and in logs.
CREDENTIAL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# An API key is an RFC 6750 bearer token, so every HTTP client can send it verbatim.
BEARER_TOKEN = re.compile(r"^[A-Za-z0-9._~+/-]+=*$")
# A Flower password: visible ASCII without the comma that separates users.
FLOWER_PASSWORD = re.compile(r"^[\x21-\x2b\x2d-\x7e]+$")
MIN_PRODUCTION_SECRET_LENGTH = 16
PLACEHOLDER_SECRETS = frozenset(
    {"admin", "apikey", "changeit", "default", "key", "letmein", "password", "secret", "test", "token"}
)
PLACEHOLDER_MARKERS = (
    "changeme",
    "changethis",
    "replaceme",
    "placeholder",
    "example",
    "yourkey",
    "yourapi",
    "yoursecret",
    "yourpassword",
    "keyhere",
    "secrethere",
)


def parse_credentials(raw: str, setting: str, secret_pattern: re.Pattern[str]) -> dict[str, str]:
    """Parse `name:secret[,name2:secret2]`; refuses malformed pairs and repeated names or secrets."""
    pairs: dict[str, str] = {}
    if not raw.strip():
        return pairs
    for position, entry in enumerate(raw.split(","), start=1):
        name, separator, secret = entry.strip().partition(":")
        if not separator or not name or not secret:
            raise ValueError(f"{setting}: entry {position} is not a name:secret pair")
        if not CREDENTIAL_NAME.match(name):
            raise ValueError(f"{setting}: name {name!r} must be 1-64 letters, digits, '.', '_' or '-'")
        if not secret_pattern.match(secret):
            raise ValueError(f"{setting}: the secret of {name!r} contains characters that are not allowed")
        if name in pairs:
            raise ValueError(f"{setting}: name {name!r} appears more than once")
        if secret in pairs.values():
            raise ValueError(f"{setting}: two names share one secret; give each its own")
        pairs[name] = secret
    return pairs


def is_placeholder(secret: str) -> bool:
    """True for secrets nobody should deploy: too short, a well-known word, a template's filler."""
    folded = re.sub(r"[^a-z0-9]", "", secret.lower())
    return (
        len(secret) < MIN_PRODUCTION_SECRET_LENGTH
        or folded in PLACEHOLDER_SECRETS
        or any(marker in folded for marker in PLACEHOLDER_MARKERS)
        or len(set(secret)) < 4
    )


class Settings(BaseSettings):
    """Configuration of the API, the workers, Beat and the workflow."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        # A refused setting must not echo its value (keys, passwords) into a startup log.
        hide_input_in_errors=True,
    )

    # --- API -------------------------------------------------------------------------------
    api_host: str = "0.0.0.0"
    api_port: int = Field(default=8000, ge=1, le=65535)
    api_workers: int = Field(default=1, ge=1, description="uvicorn worker processes for `python main.py`")
    environment: Literal["development", "production", "test"] = "development"
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = Field(
        default="text", description="text: readable lines; json: one JSON object per line (API, workers, Beat)"
    )
    min_input_length: int = Field(default=1, ge=1)
    max_input_length: int = Field(default=8000, ge=1)
    max_session_id_length: int = Field(default=128, ge=8, le=128)
    max_request_bytes: int = Field(default=1_000_000, ge=1024, description="largest request body accepted")
    api_save_linger: float = Field(
        default=0.002,
        ge=0,
        le=0.1,
        description="seconds the API gathers answered turns into one save message (5x while busy)",
    )
    task_wait_timeout: float = Field(default=10.0, gt=0, description="seconds the API waits for a read task")
    stream_ping_seconds: float = Field(
        default=15.0,
        gt=0,
        le=300,
        description="seconds between keep-alive comments on a quiet /run/stream (below any proxy's idle timeout)",
    )
    max_url_bytes: int = Field(default=8192, ge=1024, description="longest request target (path and query) accepted")

    # --- Access ------------------------------------------------------------------------------
    api_keys: str = Field(
        default="",
        repr=False,
        description="comma-separated name:key pairs; when set, every endpoint but /health needs a Bearer key",
    )
    api_keys_previous: str = Field(
        default="",
        repr=False,
        description="name:key pairs still accepted while their names rotate to the keys in API_KEYS",
    )
    flower_basic_auth: str = Field(
        default="", repr=False, description="user:password[,user2:password2] Flower asks for (HTTP basic auth)"
    )
    idempotency_ttl_seconds: int = Field(
        default=86_400, ge=60, description="how long POST /run remembers an Idempotency-Key and its answer"
    )
    idempotency_wait_seconds: float = Field(
        default=10.0, ge=0, description="how long a duplicate waits for the first request with its key, then 409"
    )

    # --- Redis: broker, result backend and the API's small shared state ----------------------
    redis_host: str = "localhost"
    redis_port: int = Field(default=6379, ge=1, le=65535)
    redis_db: int = Field(default=0, ge=0)
    redis_password: str = Field(default="", repr=False)
    redis_key_prefix: str = Field(
        default="",
        description="prefix for every Redis key convoflow and Celery write (lets several stacks share one Redis)",
    )
    redis_ssl: bool = Field(
        default=False, description="reach Redis over TLS (rediss://), verifying its certificate and host name"
    )
    redis_ssl_ca_certs: str = Field(
        default="", description="file of the CA certificates that signed Redis's certificate; empty: the system's"
    )
    celery_broker_url: str = ""
    celery_result_backend: str = ""
    broker_quorum_queues: bool = Field(
        default=False,
        description="RabbitMQ only: declare the task queues as quorum queues (replicated to a majority of the "
        "cluster's nodes; countdowns and retries then use RabbitMQ's native delayed delivery)",
    )
    embedded_broker: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="`python -m convoflow.launcher`: start a Valkey of its own when no Redis answers (auto), "
        "always, or never",
    )

    # --- Local files -------------------------------------------------------------------------
    data_dir: Path = Field(
        default=DEFAULT_DATA_DIR,
        description="the default SQLite file, the embedded broker's data and Beat's schedule live here",
    )

    # --- Database ----------------------------------------------------------------------------
    database_url: str = ""
    db_type: Literal["sqlite", "mysql"] = Field(
        default="sqlite", description="the seed's shortcut, used only when DATABASE_URL is empty"
    )
    mysql_host: str = "localhost"
    mysql_port: int = Field(default=3306, ge=1, le=65535)
    mysql_user: str = "root"
    mysql_password: str = ""
    mysql_database: str = "convoflow"
    db_pool_size: int = Field(default=5, ge=1)
    db_max_overflow: int = Field(default=5, ge=0)
    db_statement_timeout_seconds: float = Field(
        default=30.0,
        ge=0,
        description="PostgreSQL and MariaDB end a worker's statement (lock waits included) after this long, and the "
        "task retries; bounds what the threads pool cannot (no TASK_TIME_LIMIT there). MySQL: SELECTs only; "
        "SQLite: none. 0: no limit",
    )

    # --- Celery --------------------------------------------------------------------------------
    worker_pool: Literal["threads", "prefork", "solo"] = Field(
        default="threads",
        description="pool of a worker whose command line names none (-P wins): threads share one process, prefork "
        "forks one per --concurrency and is the only one that enforces TASK_TIME_LIMIT",
    )
    task_soft_time_limit: int = Field(default=300, ge=1)
    task_time_limit: int = Field(default=600, ge=1)
    result_expires: int = Field(default=86_400, ge=60, description="seconds Celery keeps task results")
    read_result_expires: int = Field(
        default=300,
        ge=10,
        description="seconds a read's result (a history page, the session list, a database check) is kept: its "
        "caller takes it at once, and a page kept for RESULT_EXPIRES would fill Redis (16 KB per 50-turn read)",
    )
    db_task_max_retries: int = Field(default=5, ge=0, description="retries of reads, deletes and schema tasks")
    db_task_retry_backoff_max: int = Field(default=10, ge=1)
    save_batch_size: int = Field(default=500, ge=1, description="most saves stored in one transaction")
    save_batch_interval: float = Field(default=0.05, gt=0, description="seconds a save waits for its batch to fill")
    save_max_retries: int = Field(default=200, ge=0, description="retries of a save on transient database errors")
    save_retry_backoff_max: int = Field(
        default=20, ge=1, le=25, description="cap of a save's retry delay; stays below the broker's visibility timeout"
    )
    outbox_redeliver_after: float = Field(
        default=45, ge=5, description="seconds after which an answered turn not yet stored is sent to the workers again"
    )
    outbox_sweep_interval: float = Field(default=5, gt=0, description="seconds between outbox sweeps in each worker")
    run_lease_seconds: float = Field(
        default=30,
        ge=1,
        description="a running background run renews its lease every third of this; a run whose worker stopped "
        "renewing it is queued again by the sweeper",
    )
    bulk_save_consumer: bool = Field(
        default=True, description="with a Redis broker, workers take queued single saves off the queue in bulk"
    )
    worker_prefetch_multiplier: int = Field(
        default=8, ge=1, description="messages prefetched per pool process (raise it when BULK_SAVE_CONSUMER is off)"
    )
    retention_days: int = Field(default=30, ge=1)
    enable_retention_cleanup: bool = True
    retention_cleanup_schedule: str = Field(
        default="0 3 * * *", description="crontab (m h dom mon dow, UTC) or a number of seconds"
    )
    retention_batch_size: int = Field(default=1000, ge=1)

    # --- Flower (read by flowerconfig.py and the launchers) -------------------------------------
    flower_port: int = Field(default=5555, ge=1, le=65535)
    flower_address: str = Field(default="127.0.0.1", description="interface Flower listens on")
    flower_public_url: str = Field(
        default="",
        description="Flower's address as browsers reach it, linked from the web page (empty: port 5555 of its host)",
    )

    # --- Workflow and model ------------------------------------------------------------------
    llm_provider: Literal["offline", "openai", "dashscope"] = "offline"
    llm_model: str = ""
    llm_timeout_seconds: float = Field(default=60.0, gt=0)
    llm_max_retries: int = Field(default=3, ge=0)
    llm_retry_min_seconds: float = Field(default=0.5, ge=0)
    llm_retry_max_seconds: float = Field(default=8.0, ge=0)
    openai_base_url: str = "https://api.openai.com/v1"
    openai_api_key: str = ""
    openai_stream_usage: bool = Field(
        default=True,
        description="ask OpenAI-compatible endpoints for a stream's token usage (stream_options.include_usage); "
        "false for an endpoint that rejects the field",
    )
    dashscope_api_key: str = ""
    dashscope_base_url: str = ""
    offline_latency_ms: int = Field(default=0, ge=0)
    system_prompt: str = "You are a helpful assistant."
    history_turns: int = Field(default=10, ge=0)
    memory_recall_timeout: float = Field(
        default=2.0,
        ge=0,
        description="seconds a turn waits for its session's memory from the database when Redis holds none of it "
        "(a day after the session's last turn, or after Redis lost it) or only the turns answered since such a read "
        "failed; then it is answered without. 0: never recall",
    )
    memory_recall_retry_seconds: float = Field(
        default=30.0,
        ge=0,
        description="after a session's memory could not be read from the database, seconds before one of its turns "
        "tries again (meanwhile its turns are answered with the turns cached since, without waiting)",
    )

    # --- Operations: health thresholds, metrics, Beat heartbeat ----------------------------------
    # A threshold of 0 reports the value in /health without ever failing on it.
    health_max_queue_depth: int = Field(default=10_000, ge=0, description="messages waiting in one queue")
    health_max_queue_age_seconds: float = Field(default=60.0, ge=0, description="age of a queue's oldest message")
    health_max_persistence_lag_seconds: float = Field(
        default=120.0, ge=0, description="age of the oldest answered turn not yet stored"
    )
    health_max_redis_memory_percent: float = Field(
        default=90.0,
        ge=0,
        le=100,
        description="share of Redis's maxmemory in use (with noeviction, Redis refuses writes when full)",
    )
    health_beat_max_age_seconds: float = Field(
        default=120.0, ge=0, description="Beat's heartbeat older than this fails /health; 0: Beat not required"
    )
    beat_heartbeat_interval_seconds: float = Field(default=10.0, gt=0, description="how often Beat records its tick")
    worker_metrics_port: int = Field(
        default=0, ge=0, le=65535, description="Prometheus exporter of each worker's main process; 0: off"
    )
    worker_metrics_address: str = "0.0.0.0"
    metrics_dir: str = Field(
        default="", description="where multi-process metric files go (a private subdirectory each); empty: temp dir"
    )

    @field_validator("log_level")
    @classmethod
    def _upper_log_level(cls, value: str) -> str:
        return value.upper()

    @field_validator("retention_cleanup_schedule")
    @classmethod
    def _valid_schedule(cls, value: str) -> str:
        from convoflow.worker.schedule import parse_schedule

        parse_schedule(value)
        return value

    @field_validator("data_dir")
    @classmethod
    def _data_dir_from_project_root(cls, value: Path) -> Path:
        # Relative to the checkout, not to wherever a process happens to start.
        return value if value.is_absolute() else PROJECT_ROOT / value

    @field_validator("api_keys", "api_keys_previous")
    @classmethod
    def _valid_api_keys(cls, value: str, info: ValidationInfo) -> str:
        parse_credentials(value, str(info.field_name).upper(), BEARER_TOKEN)
        return value.strip()

    @field_validator("flower_basic_auth")
    @classmethod
    def _valid_flower_basic_auth(cls, value: str) -> str:
        parse_credentials(value, "FLOWER_BASIC_AUTH", FLOWER_PASSWORD)
        return value.strip()

    @model_validator(mode="after")
    def _previous_keys_belong_to_current_names(self) -> Settings:
        current, previous = self.api_key_table, self.previous_api_key_table
        for name, key in previous.items():
            if name not in current:
                raise ValueError(f"API_KEYS_PREVIOUS: {name!r} is not in API_KEYS (a previous key needs a current one)")
            if key in current.values():
                raise ValueError(f"API_KEYS_PREVIOUS: the previous key of {name!r} is also a current key")
        return self

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.environment != "production":
            return self
        for setting, pairs in (
            ("API_KEYS", self.api_key_table),
            ("API_KEYS_PREVIOUS", self.previous_api_key_table),
            ("FLOWER_BASIC_AUTH", self.flower_users),
        ):
            for name, secret in pairs.items():
                if is_placeholder(secret):
                    raise ValueError(
                        f"{setting}: the secret of {name!r} looks like a placeholder; in production use a random "
                        f"value of at least {MIN_PRODUCTION_SECRET_LENGTH} characters"
                    )
        return self

    @model_validator(mode="after")
    def _check_bounds(self) -> Settings:
        if self.min_input_length > self.max_input_length:
            raise ValueError("MIN_INPUT_LENGTH must not exceed MAX_INPUT_LENGTH")
        if self.task_soft_time_limit >= self.task_time_limit:
            raise ValueError("TASK_SOFT_TIME_LIMIT must be below TASK_TIME_LIMIT")
        if self.llm_provider == "openai" and not self.openai_api_key and self.environment == "production":
            raise ValueError("LLM_PROVIDER=openai needs OPENAI_API_KEY in production")
        if self.llm_provider == "dashscope" and not self.dashscope_api_key:
            raise ValueError("LLM_PROVIDER=dashscope needs DASHSCOPE_API_KEY")
        if self.broker_quorum_queues and not self.broker_is_amqp:
            raise ValueError("BROKER_QUORUM_QUEUES needs a RabbitMQ broker (CELERY_BROKER_URL=amqp://...)")
        if self.read_result_expires < self.task_wait_timeout:
            raise ValueError("READ_RESULT_EXPIRES must be at least TASK_WAIT_TIMEOUT (a waiting caller reads it)")
        if 0 < self.health_beat_max_age_seconds <= self.beat_heartbeat_interval_seconds:
            raise ValueError("HEALTH_BEAT_MAX_AGE_SECONDS must exceed BEAT_HEARTBEAT_INTERVAL_SECONDS")
        return self

    # --- derived values ------------------------------------------------------------------
    @property
    def redis_url(self) -> str:
        """The Redis URL built from REDIS_HOST/PORT/DB/PASSWORD and, with REDIS_SSL, the TLS parameters that redis-py
        and Celery's result backend read from it."""
        auth = f":{quote(self.redis_password, safe='')}@" if self.redis_password else ""
        if not self.redis_ssl:
            return f"redis://{auth}{self.redis_host}:{self.redis_port}/{self.redis_db}"
        query = "ssl_cert_reqs=required"
        if self.redis_ssl_ca_certs:
            query += f"&ssl_ca_certs={quote(self.redis_ssl_ca_certs, safe='')}"
        return f"rediss://{auth}{self.redis_host}:{self.redis_port}/{self.redis_db}?{query}"

    @property
    def redis_tls_options(self) -> dict[str, Any]:
        """What Celery's broker_use_ssl and redis_backend_use_ssl take for a rediss:// URL: the server's certificate
        is always verified (kombu alone would skip that), against REDIS_SSL_CA_CERTS when set."""
        options: dict[str, Any] = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
        if self.redis_ssl_ca_certs:
            options["ssl_ca_certs"] = self.redis_ssl_ca_certs
        return options

    @property
    def broker_url(self) -> str:
        return self.celery_broker_url or self.redis_url

    @property
    def broker_is_amqp(self) -> bool:
        """Whether the broker is RabbitMQ (AMQP 0-9-1) rather than Redis."""
        return self.broker_url.split("://", 1)[0] in ("amqp", "amqps", "pyamqp")

    @property
    def recalls_memory(self) -> bool:
        """Whether a known session's memory is read from the database when Redis holds none of it (API and workers)."""
        return self.history_turns > 0 and self.memory_recall_timeout > 0

    @property
    def result_backend_url(self) -> str:
        return self.celery_result_backend or self.redis_url

    @property
    def api_key_table(self) -> dict[str, str]:
        """API key of each caller name; empty when API_KEYS is unset (the API is open)."""
        return parse_credentials(self.api_keys, "API_KEYS", BEARER_TOKEN)

    @property
    def previous_api_key_table(self) -> dict[str, str]:
        """Keys being rotated out: they still open the API, as the same name (so the same sessions)."""
        return parse_credentials(self.api_keys_previous, "API_KEYS_PREVIOUS", BEARER_TOKEN)

    @property
    def flower_users(self) -> dict[str, str]:
        return parse_credentials(self.flower_basic_auth, "FLOWER_BASIC_AUTH", FLOWER_PASSWORD)

    @property
    def flower_basic_auth_list(self) -> list[str]:
        """FLOWER_BASIC_AUTH in the shape Flower's `basic_auth` option takes."""
        return [f"{user}:{password}" for user, password in self.flower_users.items()]

    @property
    def idempotency_lease_seconds(self) -> int:
        """How long a first request holds its Idempotency-Key: longer than the slowest model call can take."""
        model_time = self.llm_timeout_seconds * (self.llm_max_retries + 1)
        backoff = self.llm_retry_max_seconds * self.llm_max_retries
        return int(model_time + backoff) + 30

    @property
    def redis_address(self) -> str:
        return f"{self.redis_host}:{self.redis_port}"

    @property
    def sqlalchemy_url(self) -> str:
        """DATABASE_URL, or the default SQLite file under DATA_DIR."""
        if self.database_url:
            return self.database_url
        if self.db_type == "mysql":
            password = quote(self.mysql_password, safe="")
            return (
                f"mysql+pymysql://{self.mysql_user}:{password}@{self.mysql_host}:{self.mysql_port}"
                f"/{self.mysql_database}?charset=utf8mb4"
            )
        return f"sqlite:///{self.data_dir / 'convoflow.db'}"

    @property
    def model_name(self) -> str:
        if self.llm_model:
            return self.llm_model
        return {"offline": "offline-echo", "openai": "gpt-4o-mini", "dashscope": "qwen-plus"}[self.llm_provider]

    def redis_key(self, *parts: str) -> str:
        """A namespaced key for convoflow's own Redis state."""
        return self.redis_key_prefix + "convoflow:" + ":".join(parts)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
