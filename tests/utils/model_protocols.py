"""The model protocols a test's HTTP server can speak, one per LLM_PROVIDER that calls a remote model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from convoflow.config import Settings
from tests.utils import dashscope_server, model_server

API_KEY = "sk-test-key"


@dataclass(frozen=True)
class ModelProtocol:
    """One provider's endpoint, the bodies its server answers with, and how to read what the server was sent."""

    provider: str
    root: str  # the URL path the provider is configured with (its base URL)
    path: str  # where it posts a chat turn
    base_url_variable: str
    api_key_variable: str
    answer: Callable[[str], dict[str, Any]]  # a whole answer's JSON body
    stream: Callable[..., str]  # server-sent events carrying the given pieces
    failure: Callable[..., dict[str, Any]]  # the JSON body of an error response: (code, message="boom")
    echo: Callable[[Request], Response]  # answers `echo: <the newest user message>`
    messages_of: Callable[[dict[str, Any]], list[dict[str, str]]]
    streamed: Callable[[dict[str, Any]], bool]

    def env(self, server: HTTPServer | str) -> dict[str, str]:
        """The settings of a stack whose model is this protocol's endpoint on `server`: a test's HTTP server, or the
        URL (scheme, host, port) of another one."""
        base_url = server + self.root if isinstance(server, str) else server.url_for(self.root)
        return {"LLM_PROVIDER": self.provider, self.base_url_variable: base_url, self.api_key_variable: API_KEY}

    def settings(self, base_url: str, **overrides: Any) -> Settings:
        """The provider's settings for a model at `base_url` (its root, see `root`); quick retries."""
        values: dict[str, Any] = {
            "llm_provider": self.provider,
            "llm_model": "test-model",
            self.base_url_variable.lower(): base_url,
            self.api_key_variable.lower(): API_KEY,
            "llm_max_retries": 3,
            "llm_retry_min_seconds": 0.01,
            "llm_retry_max_seconds": 0.05,
            "llm_timeout_seconds": 5,
        }
        return Settings(_env_file=None, **{**values, **overrides})

    def sent_messages(self, server: HTTPServer) -> list[list[dict[str, str]]]:
        return [self.messages_of(body) for body in model_server.sent_bodies(server)]


OPENAI = ModelProtocol(
    provider="openai",
    root="/v1",
    path=model_server.COMPLETIONS,
    base_url_variable="OPENAI_BASE_URL",
    api_key_variable="OPENAI_API_KEY",
    answer=model_server.completion,
    stream=model_server.sse,
    failure=lambda code, message="boom": {"error": {"message": message, "type": "server_error", "code": code}},
    echo=model_server.echo_last_user_message,
    messages_of=lambda body: body["messages"],
    streamed=lambda body: body.get("stream") is True,
)

DASHSCOPE = ModelProtocol(
    provider="dashscope",
    root=dashscope_server.API_ROOT,
    path=dashscope_server.GENERATION,
    base_url_variable="DASHSCOPE_BASE_URL",
    api_key_variable="DASHSCOPE_API_KEY",
    answer=dashscope_server.generation,
    stream=dashscope_server.sse,
    failure=lambda code, message="boom": dashscope_server.failure(code, message),
    echo=dashscope_server.echo_last_user_message,
    messages_of=lambda body: body["input"]["messages"],
    streamed=lambda body: body["parameters"].get("incremental_output") is True,
)

PROTOCOLS = (OPENAI, DASHSCOPE)
BY_PROVIDER = {protocol.provider: protocol for protocol in PROTOCOLS}
