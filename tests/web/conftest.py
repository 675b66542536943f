"""A headless Chromium (Debian's package, driven by Playwright) and a stack of its own for the page's tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright

from tests.conftest import make_stack
from tests.utils.processes import free_port
from tests.utils.services import RedisTarget, create_database, drop_database, required
from tests.utils.stack import Stack, running

# Debian's package: Playwright's own browser download cannot work without internet access.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = ViewportSize(width=1280, height=800)
# Slow enough to see the answer arrive in pieces: the offline model spreads its ~12 words over this time.
STREAM_MS = 1200
FLOWER_URL = "http://flower.example.test:5555"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        if required():
            pytest.fail(f"Debian's chromium ({CHROMIUM}) is required when CI=true", pytrace=False)
        pytest.skip(f"Debian's chromium ({CHROMIUM}) is not installed: apt-get install chromium")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (empty local storage) at a desktop size."""
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(20_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@contextlib.contextmanager
def _web_stack(name: str, redis_target: RedisTarget, log_dir: Path, **env: str) -> Iterator[Stack]:
    # A database of its own: the sidebar lists every session the database holds.
    url = create_database("sqlite", name)
    assert url is not None
    try:
        stack = make_stack(name, redis_target, url, log_dir, OFFLINE_LATENCY_MS=str(STREAM_MS), **env)
        with running(stack) as live:
            yield live
    finally:
        drop_database("sqlite", url)


@pytest.fixture(scope="module")
def web_stack(redis_target: RedisTarget, log_dir: Path) -> Iterator[Stack]:
    with _web_stack("web", redis_target, log_dir, FLOWER_PUBLIC_URL=FLOWER_URL) as live:
        yield live


@contextlib.contextmanager
def _api_only(name: str, redis_target: RedisTarget, log_dir: Path, **env: str) -> Iterator[Stack]:
    """An API process with no worker: enough to see how the page reports what is missing."""
    stack = make_stack(name, redis_target, "sqlite:///unused.db", log_dir, **env)
    try:
        stack.start_api()
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def model_down_stack(redis_target: RedisTarget, log_dir: Path) -> Iterator[Stack]:
    """The model endpoint refuses connections, no worker answers reads within a second."""
    dead = f"http://127.0.0.1:{free_port()}/v1"
    env = {"LLM_PROVIDER": "openai", "OPENAI_BASE_URL": dead, "OPENAI_API_KEY": "sk-test", "LLM_MAX_RETRIES": "0"}
    with _api_only("web-model-down", redis_target, log_dir, TASK_WAIT_TIMEOUT="1", **env) as live:
        yield live


@pytest.fixture(scope="module")
def broker_down_stack(redis_target: RedisTarget, log_dir: Path) -> Iterator[Stack]:
    """Redis, hence the broker, refuses connections (the stack still cleans up in the real Redis)."""
    with _api_only("web-broker-down", redis_target, log_dir, REDIS_PORT=str(free_port())) as live:
        yield live
