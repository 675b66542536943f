"""ConversationWorkflow: the LangGraph run over a provider, and the messages it builds from a session's history."""

from collections.abc import AsyncIterator
from typing import Any

import pytest

from convoflow.config import Settings
from convoflow.workflow import (
    ChatMessage,
    ConversationWorkflow,
    ModelError,
    PriorTurn,
    WorkflowAnswer,
    build_messages,
    build_provider,
)
from convoflow.workflow.graph import graph

pytestmark = pytest.mark.anyio

HISTORY = [PriorTurn("q1", "a1"), PriorTurn("q2", "a2"), PriorTurn("q3", "a3")]


class RecordingProvider:
    """A provider that remembers the messages it was asked, and answers or fails on request."""

    name = "recording"
    model = "recording-model"

    def __init__(self, failure: ModelError | None = None) -> None:
        self.calls: list[list[ChatMessage]] = []
        self._failure = failure

    async def aclose(self) -> None:
        pass

    async def complete(self, messages: list[ChatMessage]) -> str:
        self.calls.append(messages)
        if self._failure:
            raise self._failure
        return f"answer {len(self.calls)}"

    async def stream(self, messages: list[ChatMessage]) -> AsyncIterator[str]:
        self.calls.append(messages)
        yield "streamed"


def workflow_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "llm_provider": "offline",
        "system_prompt": "Be kind.",
        "history_turns": 10,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def test_build_messages_puts_system_prompt_history_oldest_first_then_input() -> None:
    assert build_messages("Be kind.", HISTORY[:2], "q3", history_turns=10) == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "a2"},
        {"role": "user", "content": "q3"},
    ]


def test_build_messages_keeps_only_the_last_history_turns() -> None:
    messages = build_messages("Be kind.", HISTORY, "q4", history_turns=2)

    assert [m["content"] for m in messages] == [
        "Be kind.",
        "q2",
        "a2",
        "q3",
        "a3",
        "q4",
    ]


def test_build_messages_with_zero_history_turns_sends_no_history() -> None:
    assert build_messages("Be kind.", HISTORY, "q4", history_turns=0) == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "q4"},
    ]


def test_build_messages_omits_an_empty_system_prompt() -> None:
    assert build_messages("", [], "hello", history_turns=10) == [{"role": "user", "content": "hello"}]


def test_graph_is_compiled_once_with_a_name() -> None:
    assert graph.name == "ConversationWorkflow"


async def test_run_answers_with_the_offline_model() -> None:
    settings = workflow_settings()
    workflow = ConversationWorkflow(build_provider(settings), settings)

    answer = await workflow.run("hello", HISTORY[:1])

    assert answer == WorkflowAnswer(
        answer="[offline model] You said: hello (I remember 1 earlier turns.)",
        model="offline-echo",
        provider="offline",
    )


async def test_run_truncates_history_to_history_turns() -> None:
    settings = workflow_settings(history_turns=2)
    workflow = ConversationWorkflow(build_provider(settings), settings)

    answer = await workflow.run("q4", HISTORY)

    assert "(I remember 2 earlier turns.)" in answer.answer


async def test_run_sends_the_provider_only_what_was_passed_in() -> None:
    provider = RecordingProvider()
    workflow = ConversationWorkflow(provider, workflow_settings())

    first = await workflow.run("session A question", [PriorTurn("A earlier", "A reply")])
    second = await workflow.run("session B question")

    assert provider.calls == [
        build_messages("Be kind.", [PriorTurn("A earlier", "A reply")], "session A question", 10),
        build_messages("Be kind.", [], "session B question", 10),
    ]
    assert (first.answer, second.answer) == ("answer 1", "answer 2")
    assert (second.model, second.provider) == ("recording-model", "recording")


async def test_run_raises_the_providers_model_error() -> None:
    failure = ModelError("model endpoint returned HTTP 503 after 4 attempts", provider="recording")
    workflow = ConversationWorkflow(RecordingProvider(failure), workflow_settings())

    with pytest.raises(ModelError) as raised:
        await workflow.run("hello")

    assert raised.value is failure


async def test_stream_sends_the_same_messages_as_run() -> None:
    provider = RecordingProvider()
    workflow = ConversationWorkflow(provider, workflow_settings(history_turns=1))

    await workflow.run("q4", HISTORY)
    deltas = [delta async for delta in workflow.stream("q4", HISTORY)]

    assert deltas == ["streamed"]
    assert provider.calls[0] == provider.calls[1]


async def test_offline_stream_joins_to_the_run_answer() -> None:
    settings = workflow_settings()
    workflow = ConversationWorkflow(build_provider(settings), settings)

    deltas = [delta async for delta in workflow.stream("tell me more", HISTORY)]

    assert "".join(deltas) == (await workflow.run("tell me more", HISTORY)).answer
