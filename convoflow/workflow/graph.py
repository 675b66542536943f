"""The conversation graph, compiled once, and the ConversationWorkflow that runs or streams a turn."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from langgraph.graph import END, START, StateGraph

from convoflow.config import Settings
from convoflow.workflow.nodes import build_messages, respond
from convoflow.workflow.providers.base import ModelProvider
from convoflow.workflow.state import ConversationState, PriorTurn, WorkflowAnswer, WorkflowContext

__all__ = ["ConversationWorkflow", "PriorTurn", "WorkflowAnswer", "build_messages", "graph"]

_builder = StateGraph(ConversationState, context_schema=WorkflowContext)
_builder.add_node(respond)
_builder.add_edge(START, "respond")
_builder.add_edge("respond", END)

# Providers and settings arrive per run through the context, so one compiled graph serves every workflow.
graph = _builder.compile(name="ConversationWorkflow")


class ConversationWorkflow:
    """Answers one turn of a session with a given model provider."""

    def __init__(self, provider: ModelProvider, settings: Settings) -> None:
        self._graph = graph
        self._context = WorkflowContext(
            provider=provider,
            system_prompt=settings.system_prompt,
            history_turns=settings.history_turns,
        )

    async def run(self, user_input: str, history: Sequence[PriorTurn] = ()) -> WorkflowAnswer:
        """The model's whole answer; raises ModelError when the model cannot answer."""
        state = ConversationState(user_input=user_input, history=tuple(history))
        final = await self._graph.ainvoke(state, context=self._context)
        result: WorkflowAnswer = final["result"]
        return result

    async def aclose(self) -> None:
        """Close the provider's connections (at shutdown, or when a short-lived event loop ends)."""
        await self._context.provider.aclose()

    async def stream(self, user_input: str, history: Sequence[PriorTurn] = ()) -> AsyncIterator[str]:
        """The answer as text deltas, built from the same messages as `run` (the graph is not involved)."""
        context = self._context
        messages = build_messages(context.system_prompt, history, user_input, context.history_turns)
        async for delta in context.provider.stream(messages):
            yield delta
