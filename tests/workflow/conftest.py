"""Shared fixtures of the workflow tests: async tests run on asyncio through the anyio plugin."""

import pytest
from pytest_httpserver import HTTPServer


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
