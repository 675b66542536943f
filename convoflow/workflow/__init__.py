"""The conversation workflow: a LangGraph graph over a pluggable chat model provider."""

from convoflow.workflow.graph import ConversationWorkflow, PriorTurn, WorkflowAnswer, build_messages
from convoflow.workflow.providers import ChatMessage, ModelError, ModelProvider, build_provider

__all__ = [
    "ChatMessage",
    "ConversationWorkflow",
    "ModelError",
    "ModelProvider",
    "PriorTurn",
    "WorkflowAnswer",
    "build_messages",
    "build_provider",
]
