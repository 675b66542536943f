"""The graph's node, `respond`, and the messages it builds; it returns a partial state update."""

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


async def respond(state: ConversationState, runtime: Runtime[WorkflowContext]) -> dict[str, Any]:
    """Build the model's messages from the session's history and the new input, ask the provider, package the reply.

    One node, not three: each LangGraph step costs about half a millisecond of CPU per turn, more than this
    node's own work with a fast model. A ModelError ends the run and reaches the caller unchanged.
    """
    context = runtime.context
    messages = build_messages(context.system_prompt, state.history, state.user_input, context.history_turns)
    reply = await context.provider.complete(messages)
    provider = context.provider
    return {
        "messages": messages,
        "reply": reply,
        "result": WorkflowAnswer(answer=reply, model=provider.model, provider=provider.name),
    }
