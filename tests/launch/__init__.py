"""Tests of the ways to start the stack: the launcher, start_celery_services.py, compose, the Windows script."""
