"""The graph's nodes: load_context -> call_model -> answer, each returning a partial state update."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langgraph.runtime import Runtime

from convoflow.workflow.providers.base import ChatMessage
from convoflow.workflow.state import ConversationState, PriorTurn, WorkflowAnswer, WorkflowContext


def build_messages(
    system_prompt: str, history: Sequence[PriorTurn], user_input: str, history_turns: int
) -> list[ChatMessage]:
    """The system prompt (if any), the last `history_turns` turns oldest first, then the new user input."""
    messages: list[ChatMessage] = [{"role": "system", "content": system_prompt}] if system_prompt else []
    recent = list(history)[-history_turns:] if history_turns > 0 else []
    for turn in recent:
        messages.append({"role": "user", "content": turn.user_input})
        messages.append({"role": "assistant", "content": turn.ai_response})
    messages.append({"role": "user", "content": user_input})
    return messages


async def load_context(state: ConversationState, runtime: Runtime[WorkflowContext]) -> dict[str, Any]:
    """Turn the session's history and the new input into the model's messages."""
    context = runtime.context
    return {
        "messages": build_messages(
            context.system_prompt,
            state.history,
            state.user_input,
            context.history_turns,
        )
    }


async def call_model(state: ConversationState, runtime: Runtime[WorkflowContext]) -> dict[str, Any]:
    """Ask the provider; a ModelError ends the run and reaches the caller unchanged."""
    return {"reply": await runtime.context.provider.complete(state.messages)}


async def answer(state: ConversationState, runtime: Runtime[WorkflowContext]) -> dict[str, Any]:
    """Package the reply with the name of the model that gave it."""
    provider = runtime.context.provider
    return {"result": WorkflowAnswer(answer=state.reply, model=provider.model, provider=provider.name)}
