"""Starts the API with uvicorn on API_HOST:API_PORT; nothing else."""

import uvicorn

from convoflow.config import get_settings


def main() -> None:
    settings = get_settings()
    uvicorn.run(
        "convoflow.api.app:create_app",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        workers=settings.api_workers,
        log_level=settings.log_level.lower(),
    )


if __name__ == "__main__":
    main()
