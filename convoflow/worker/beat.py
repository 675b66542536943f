"""Beat's scheduler: Celery's own, plus a heartbeat in Redis on every tick so /health can tell Beat is alive."""

from __future__ import annotations

import logging
from typing import Any

import redis
from celery.beat import PersistentScheduler
from redis.exceptions import RedisError

from convoflow.config import get_settings
from convoflow.observability.heartbeat import record_heartbeat

logger = logging.getLogger(__name__)


class HeartbeatScheduler(PersistentScheduler):
    """Records a heartbeat after each tick; Beat ticks at least every BEAT_HEARTBEAT_INTERVAL_SECONDS."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._settings = get_settings()
        self._redis = redis.Redis.from_url(self._settings.redis_url, socket_connect_timeout=2, socket_timeout=2)
        self._heartbeat_failing = False

    def tick(self, *args: Any, **kwargs: Any) -> float:
        interval: float = super().tick(*args, **kwargs)
        self._beat()
        return interval

    def _beat(self) -> None:
        try:
            record_heartbeat(self._redis, self._settings)
        except RedisError as exc:
            if not self._heartbeat_failing:  # say it once per outage, not on every tick
                logger.warning("Beat cannot record its heartbeat in Redis: %s", exc.__class__.__name__)
            self._heartbeat_failing = True
            return
        if self._heartbeat_failing:
            logger.info("Beat records its heartbeat again")
        self._heartbeat_failing = False

    def close(self) -> None:
        super().close()
        self._redis.close()
