"""Flower's configuration file, read from the working directory by `celery -A celery_app flower`."""

from convoflow.worker.flower import flower_options

# Flower takes every module-level name that matches one of its options (here: basic_auth).
globals().update(flower_options())
