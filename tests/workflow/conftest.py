"""Shared fixtures of the workflow tests: async tests run on asyncio through the anyio plugin."""

import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from convoflow.workflow.providers.dashscope import trusted_cas
from tests.utils.providers import close_providers
from tests.utils.tls import make_server_certificate


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def proxy(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> HTTPServer:
    """The test's server as the forward proxy the environment names for plain HTTP; it answers requests itself."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://{httpserver.host}:{httpserver.port}")
    return httpserver


@pytest.fixture
async def closing_providers() -> AsyncIterator[None]:
    """Every provider the test built with tests.utils.providers.provider_for is closed when it ends."""
    yield
    await close_providers()


@pytest.fixture
def private_ca_server(tmp_path: Path) -> Iterator[tuple[HTTPServer, Path]]:
    """An HTTPS server whose certificate a private CA signed, as an in-house model gateway's; (server, CA file)."""
    files = make_server_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(files.cert, files.key)
    server = HTTPServer(host="127.0.0.1", ssl_context=context)
    server.start()
    try:
        yield server, files.ca
    finally:
        server.clear()
        server.stop()


@pytest.fixture
def trust(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path | None], None]]:
    """`trust(ca_file)` makes providers built afterwards trust that CA too (SSL_CERT_FILE); `trust(None)`: only the
    default CAs. SSL_CERT_DIR is unset throughout."""

    def trust_also(ca: Path | None) -> None:
        monkeypatch.delenv("SSL_CERT_DIR", raising=False)
        if ca is None:
            monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        else:
            monkeypatch.setenv("SSL_CERT_FILE", str(ca))
        trusted_cas.cache_clear()  # the DashScope provider reads the trust store once per process

    yield trust_also
    trusted_cas.cache_clear()
