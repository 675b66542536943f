"""The real-protocol figures' model (bench/model_server.py) must answer convoflow's providers like an endpoint."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from bench.api import serving_model
from bench.harness import bench_stack, free_redis_db
from bench.model_server import STREAMED_WORDS, delay_seconds
from tests.utils.conversations import stream
from tests.utils.model_protocols import BY_PROVIDER
from tests.utils.processes import wait_until


def test_the_model_name_sets_the_delay() -> None:
    assert (delay_seconds("echo-1000"), delay_seconds("echo-0"), delay_seconds("gpt-4o-mini")) == (1.0, 0.0, 0.0)


@pytest.mark.parametrize("provider", ["openai", "dashscope"])
def test_the_api_answers_through_the_benchmark_model_and_stores_the_turn(tmp_path: Path, provider: str) -> None:
    with (
        free_redis_db() as redis_db,
        bench_stack("postgresql", tmp_path, redis_db) as stack,
        serving_model(stack) as root_url,
    ):
        stack.worker("--concurrency=2")
        _api, url = stack.api(LLM_MODEL="echo-0", **BY_PROVIDER[provider].env(root_url))
        engine = stack.engine()
        try:
            with httpx.Client(base_url=url, timeout=30) as client:  # stack.api() returns once the API answers
                first = client.post("/run", json={"user_input": "first question", "session_id": "model-bench"})
                second = client.post("/run", json={"user_input": "second question", "session_id": "model-bench"})
                events = stream(client, {"user_input": "third question", "session_id": "model-bench"})
            assert (first.status_code, second.status_code) == (200, 200), (first.text, second.text)
            answers = (first.json()["answer"], second.json()["answer"])
            assert answers == ("echo: first question", "echo: second question")
            # A streamed answer comes in STREAMED_WORDS pieces: the echo word by word, then filler.
            tokens = [data["delta"] for name, data in events if name == "token"]
            assert len(tokens) == STREAMED_WORDS
            assert "".join(tokens).startswith("echo: third question more more")
            assert events[-1][0] == "done" and events[-1][1]["answer"] == "".join(tokens)
            wait_until(lambda: stack.count_turns(engine) == 3, 30, what="the three turns stored")
        finally:
            engine.dispose()
