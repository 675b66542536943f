"""A client that leaves a stream also ends the model's stream: no tokens are generated (and paid for) that nobody
will read, and the partial answer is saved as interrupted. Against a real HTTP model endpoint that streams slowly."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import make_stack
from tests.utils.conversations import leave_after_tokens, wait_until_persisted
from tests.utils.keep_alive_model import STREAM_PAUSE, STREAM_WORDS, KeepAliveModel, keep_alive_model
from tests.utils.processes import wait_until
from tests.utils.services import RedisTarget
from tests.utils.stack import Stack, running


@pytest.fixture(scope="module")
def model() -> Iterator[KeepAliveModel]:
    with keep_alive_model() as served:
        yield served


@pytest.fixture(scope="module")
def streaming_stack(
    model: KeepAliveModel, sqlite_url: str, redis_target: RedisTarget, log_dir: Path
) -> Iterator[Stack]:
    stack = make_stack("stream-upstream", redis_target, sqlite_url, log_dir, **model.env())
    with running(stack, worker_args=("-c", "1")) as live:
        yield live


def test_a_client_leaving_mid_stream_ends_the_models_stream_and_saves_the_partial_turn(
    model: KeepAliveModel, streaming_stack: Stack
) -> None:
    session = f"upstream-{uuid.uuid4()}"
    received = leave_after_tokens(streaming_stack, {"user_input": "go on and on", "session_id": session}, 3)

    # The model would write for STREAM_WORDS x STREAM_PAUSE seconds more; it finds its reader gone instead.
    wait_until(lambda: model.abandoned == 1, STREAM_WORDS * STREAM_PAUSE, what="the model's stream to be dropped")
    [turn] = wait_until_persisted(streaming_stack, session, 1)
    assert turn["status"] == "interrupted"
    assert turn["ai_response"].startswith("".join(received))
    assert len(turn["ai_response"].split()) < STREAM_WORDS
