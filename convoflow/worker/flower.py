"""Flower's options from convoflow's settings: basic auth from FLOWER_BASIC_AUTH, never open in production."""

from __future__ import annotations

import logging
from typing import Any

from convoflow.config import Settings, get_settings

logger = logging.getLogger(__name__)


def flower_options(settings: Settings | None = None) -> dict[str, Any]:
    """Options for Flower's config file (`flowerconfig.py`); exits when production would run Flower unprotected.

    Flower reads FLOWER_BASIC_AUTH from the environment by itself, but not from `.env`: going through the
    settings gives it the same value every other process sees, wherever it came from.
    """
    settings = settings or get_settings()
    if settings.flower_basic_auth_list:
        return {"basic_auth": settings.flower_basic_auth_list}
    if settings.environment == "production":
        raise SystemExit("FLOWER_BASIC_AUTH is not set: refusing to start Flower without authentication in production")
    logger.warning("FLOWER_BASIC_AUTH is not set: Flower is open to anyone who can reach it")
    # Explicitly no login: Flower would read an empty FLOWER_BASIC_AUTH variable as one unusable login.
    return {"basic_auth": []}
