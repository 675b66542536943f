"""The benchmark's naive reference (bench/naive_app.py) must really answer and store, or its figures mean nothing."""

from __future__ import annotations

from pathlib import Path

import httpx

from bench.api import serving_naive
from bench.harness import bench_stack, free_redis_db
from tests.utils.processes import wait_until


def test_naive_reference_answers_stores_and_reads_back(tmp_path: Path) -> None:
    with (
        free_redis_db() as redis_db,
        bench_stack("postgresql", tmp_path, redis_db) as stack,
        serving_naive(stack) as (_api, _worker, url),
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        answer = client.post("/run", json={"user_input": "naive question", "session_id": "naive-session"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["answer"] == "(offline) naive question"

        def stored() -> list[dict[str, str]]:
            page = client.get("/history", params={"session_id": "naive-session", "limit": 50})
            assert page.status_code == 200, page.text
            history: list[dict[str, str]] = page.json()["history"]
            return history

        wait_until(lambda: len(stored()) == 1, 30, what="the naive worker to store the turn")
        [turn] = stored()
        assert turn["user_input"] == "naive question"
        assert turn["ai_response"] == "(offline) naive question"
