"""Model providers: offline, OpenAI-compatible and DashScope, behind one protocol."""

from convoflow.workflow.providers.base import ChatMessage, ModelError, ModelProvider
from convoflow.workflow.providers.factory import build_provider

__all__ = ["ChatMessage", "ModelError", "ModelProvider", "build_provider"]
