"""Starts the API with uvicorn on API_HOST:API_PORT; nothing else."""

import uvicorn

from convoflow.config import get_settings
from convoflow.logging_setup import configure_logging
from convoflow.observability.multiprocess import use_private_directory


def main() -> None:
    settings = get_settings()
    # uvicorn's own loggers go through convoflow's handler (request ids, LOG_FORMAT) instead of its default config.
    configure_logging(settings.log_level, settings.log_format)
    if settings.api_workers > 1:
        # Each uvicorn worker records into this directory; whichever answers /metrics reports them all.
        use_private_directory(settings, "api")
    uvicorn.run(
        "convoflow.api.app:create_app",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        workers=settings.api_workers,
        log_level=settings.log_level.lower(),
        log_config=None,
    )


if __name__ == "__main__":
    main()
