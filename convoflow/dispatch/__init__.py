"""The API side of Celery: send tasks, remember their ids, await their results without blocking."""
