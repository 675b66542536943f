"""The one typed settings object: every knob of convoflow, read from the environment and `.env`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_PATH = PROJECT_ROOT / "data" / "convoflow.db"


class Settings(BaseSettings):
    """Configuration of the API, the workers, Beat and the workflow."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )

    # --- API -------------------------------------------------------------------------------
    api_host: str = "0.0.0.0"
    api_port: int = Field(default=8000, ge=1, le=65535)
    api_workers: int = Field(default=1, ge=1, description="uvicorn worker processes for `python main.py`")
    environment: Literal["development", "production", "test"] = "development"
    log_level: str = "INFO"
    min_input_length: int = Field(default=1, ge=1)
    max_input_length: int = Field(default=8000, ge=1)
    max_session_id_length: int = Field(default=128, ge=8, le=128)
    max_request_bytes: int = Field(default=1_000_000, ge=1024, description="largest request body accepted")
    task_wait_timeout: float = Field(default=10.0, gt=0, description="seconds the API waits for a read task")
    flower_public_url: str = Field(
        default="",
        description="Flower's address as browsers reach it, linked from the web page (empty: port 5555 of its host)",
    )

    # --- Redis: broker, result backend and the API's small shared state ----------------------
    redis_host: str = "localhost"
    redis_port: int = Field(default=6379, ge=1, le=65535)
    redis_db: int = Field(default=0, ge=0)
    redis_password: str = ""
    redis_key_prefix: str = Field(
        default="",
        description="prefix for every Redis key convoflow and Celery write (lets several stacks share one Redis)",
    )
    celery_broker_url: str = ""
    celery_result_backend: str = ""

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

    # --- Celery --------------------------------------------------------------------------------
    task_soft_time_limit: int = Field(default=300, ge=1)
    task_time_limit: int = Field(default=600, ge=1)
    result_expires: int = Field(default=86_400, ge=60, description="seconds Celery keeps task results")
    db_task_max_retries: int = Field(default=5, ge=0, description="retries of reads, deletes and schema tasks")
    db_task_retry_backoff_max: int = Field(default=10, ge=1)
    save_batch_size: int = Field(default=500, ge=1, description="most saves stored in one transaction")
    save_batch_interval: float = Field(default=0.05, gt=0, description="seconds a save waits for its batch to fill")
    save_max_retries: int = Field(default=200, ge=0, description="retries of a save on transient database errors")
    save_retry_backoff_max: int = Field(
        default=20, ge=1, le=25, description="cap of a save's retry delay; stays below the broker's visibility timeout"
    )
    worker_prefetch_multiplier: int = Field(default=256, ge=1, description="messages prefetched per pool process")
    retention_days: int = Field(default=30, ge=1)
    enable_retention_cleanup: bool = True
    retention_cleanup_schedule: str = Field(
        default="0 3 * * *", description="crontab (m h dom mon dow, UTC) or a number of seconds"
    )
    retention_batch_size: int = Field(default=1000, ge=1)

    # --- Workflow and model ------------------------------------------------------------------
    llm_provider: Literal["offline", "openai", "dashscope"] = "offline"
    llm_model: str = ""
    llm_timeout_seconds: float = Field(default=60.0, gt=0)
    llm_max_retries: int = Field(default=3, ge=0)
    llm_retry_min_seconds: float = Field(default=0.5, ge=0)
    llm_retry_max_seconds: float = Field(default=8.0, ge=0)
    openai_base_url: str = "https://api.openai.com/v1"
    openai_api_key: str = ""
    dashscope_api_key: str = ""
    dashscope_base_url: str = ""
    offline_latency_ms: int = Field(default=0, ge=0)
    system_prompt: str = "You are a helpful assistant."
    history_turns: int = Field(default=10, ge=0)

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
        return self

    # --- derived values ------------------------------------------------------------------
    @property
    def redis_url(self) -> str:
        """The Redis URL built from REDIS_HOST/PORT/DB/PASSWORD."""
        auth = f":{quote(self.redis_password, safe='')}@" if self.redis_password else ""
        return f"redis://{auth}{self.redis_host}:{self.redis_port}/{self.redis_db}"

    @property
    def broker_url(self) -> str:
        return self.celery_broker_url or self.redis_url

    @property
    def result_backend_url(self) -> str:
        return self.celery_result_backend or self.redis_url

    @property
    def redis_address(self) -> str:
        return f"{self.redis_host}:{self.redis_port}"

    @property
    def sqlalchemy_url(self) -> str:
        """DATABASE_URL, or the default SQLite file under ./data/."""
        if self.database_url:
            return self.database_url
        if self.db_type == "mysql":
            password = quote(self.mysql_password, safe="")
            return (
                f"mysql+pymysql://{self.mysql_user}:{password}@{self.mysql_host}:{self.mysql_port}"
                f"/{self.mysql_database}?charset=utf8mb4"
            )
        return f"sqlite:///{DEFAULT_SQLITE_PATH}"

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
