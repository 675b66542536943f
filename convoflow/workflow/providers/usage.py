"""Token counts a provider reports for its last call, handed to the instrumentation without changing `complete`."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class TokenUsage:
    prompt_tokens: int
    completion_tokens: int


# Set inside a provider's call and read by the wrapper that awaited it: both run in the same task's context.
_reported: ContextVar[TokenUsage | None] = ContextVar("convoflow_token_usage", default=None)


def report_usage(prompt_tokens: int, completion_tokens: int) -> None:
    """Called by a provider whose API tells how many tokens the call used."""
    _reported.set(TokenUsage(prompt_tokens, completion_tokens))


def clear_usage() -> None:
    _reported.set(None)


def reported_usage() -> TokenUsage | None:
    return _reported.get()
