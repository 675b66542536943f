"""The stack's services as child specs: the same command lines the README gives for starting them by hand."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from convoflow.config import Settings
from convoflow.launcher.supervisor import ChildSpec

CELERY_APP = "celery_app"
SERVICE_NAMES = ("worker", "beat", "flower")
WILDCARD_HOSTS = frozenset({"0.0.0.0", "", "::"})


def celery_argv(*args: str) -> list[str]:
    """`celery -A celery_app ...`, run by this interpreter so an unactivated virtualenv works too."""
    return [sys.executable, "-m", "celery", "-A", CELERY_APP, *args]


def api(port: int | None = None) -> ChildSpec:
    return ChildSpec("api", [sys.executable, "main.py"], env={"API_PORT": str(port)} if port else {})


def worker(
    loglevel: str = "info",
    concurrency: int | None = None,
    queues: Sequence[str] = (),
    pool: str | None = None,
) -> ChildSpec:
    argv = celery_argv("worker", f"--loglevel={loglevel}")
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    if queues:
        argv.append(f"--queues={','.join(queues)}")
    if pool:
        argv.append(f"--pool={pool}")
    return ChildSpec("worker", argv)


def beat(settings: Settings, loglevel: str = "info") -> ChildSpec:
    # The schedule's state file lives with the other local data, not in whatever directory the stack starts from.
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    schedule = settings.data_dir / "celerybeat-schedule"
    return ChildSpec("beat", celery_argv("beat", f"--loglevel={loglevel}", f"--schedule={schedule}"))


def flower(settings: Settings) -> ChildSpec:
    # flowerconfig.py gives Flower the same values; the logins go by environment, never on the command line.
    return ChildSpec(
        "flower",
        celery_argv("flower", f"--port={settings.flower_port}", f"--address={settings.flower_address}"),
        env={"FLOWER_BASIC_AUTH": settings.flower_basic_auth} if settings.flower_basic_auth else {},
    )


def browsable(host: str) -> str:
    """The host to put in a URL for a person: `localhost` for a server listening everywhere or on loopback."""
    return "localhost" if host in WILDCARD_HOSTS or host == "127.0.0.1" else host


def reachable_host(host: str) -> str:
    """The address to probe a server on from this machine."""
    return "127.0.0.1" if host in WILDCARD_HOSTS else host


def api_url(settings: Settings) -> str:
    return f"http://{browsable(settings.api_host)}:{settings.api_port}"


def flower_url(settings: Settings) -> str:
    return f"http://{browsable(settings.flower_address)}:{settings.flower_port}"


def flower_notice(settings: Settings) -> str:
    """Where Flower is, and whether it asks for a login."""
    if settings.flower_basic_auth_list:
        users = ", ".join(pair.split(":", 1)[0] for pair in settings.flower_basic_auth_list)
        return f"Flower: {flower_url(settings)} (basic auth for {users})"
    scope = "localhost only" if settings.flower_address in ("127.0.0.1", "localhost", "::1") else "the network"
    return (
        f"Flower: {flower_url(settings)} (open, no login, listening on {scope}; "
        "set FLOWER_BASIC_AUTH=user:password to require one)"
    )
