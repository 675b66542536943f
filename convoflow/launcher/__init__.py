"""Running the stack: `python -m convoflow.launcher`, and the pieces start_celery_services.py shares."""
