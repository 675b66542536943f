"""Flower's settings from convoflow's (environment and `.env`); Flower reads this file when started from here.

`celery -A celery_app flower` loads `flowerconfig.py` from the current directory after the FLOWER_* environment
variables and before its command-line options, so `.env` works for Flower too, and an empty FLOWER_BASIC_AUTH
means no login (Flower alone would read it as one empty, unusable login and lock everyone out).
"""

from convoflow.config import get_settings
from convoflow.worker.flower import flower_options

_settings = get_settings()

port = _settings.flower_port
address = _settings.flower_address
# basic_auth from FLOWER_BASIC_AUTH; production refuses to start Flower without it.
globals().update(flower_options(_settings))
