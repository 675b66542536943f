"""Shared fixtures of the workflow tests: async tests run on asyncio through the anyio plugin."""

from collections.abc import AsyncIterator

import pytest
from pytest_httpserver import HTTPServer

from tests.utils.providers import close_providers


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
