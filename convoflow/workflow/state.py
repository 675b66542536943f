"""What flows through the conversation graph: its state, the run's context, and the turns in and out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from convoflow.workflow.providers.base import ChatMessage, ModelProvider


@dataclass(frozen=True)
class PriorTurn:
    """A previous turn of the same session; histories are passed oldest first."""

    user_input: str
    ai_response: str


@dataclass(frozen=True)
class WorkflowAnswer:
    """The model's answer to one turn, and which model gave it."""

    answer: str
    model: str
    provider: str


@dataclass(frozen=True)
class WorkflowContext:
    """Run-scoped dependencies the nodes read through `runtime.context`."""

    provider: ModelProvider
    system_prompt: str
    history_turns: int


@dataclass
class ConversationState:
    """One turn on its way through the graph; each node fills in the next field."""

    user_input: str
    history: Sequence[PriorTurn] = ()
    messages: list[ChatMessage] = field(default_factory=list)
    reply: str = ""
    result: WorkflowAnswer | None = None
