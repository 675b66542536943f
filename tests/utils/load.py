"""A small bounded load of POST /run calls, counting what the API answered."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from dataclasses import dataclass, field

import httpx


@dataclass
class LoadResult:
    """What clients saw: the turn ids answered 200, and every status (or transport error) by count."""

    acknowledged: dict[str, str] = field(default_factory=dict)  # turn_id -> user_input
    statuses: Counter[str] = field(default_factory=Counter)
    bodies_5xx: list[str] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return sum(self.statuses.values())

    def count(self, prefix: str) -> int:
        return sum(n for status, n in self.statuses.items() if status.startswith(prefix))


async def _drive(
    base_url: str, session_id: str, total: int, concurrency: int, result: LoadResult, pause: float, label: str
) -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(total):
        queue.put_nowait(index)

    async def client_loop(client: httpx.AsyncClient) -> None:
        while True:
            try:
                index = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            text = f"{label} turn {index}"
            try:
                response = await client.post("/run", json={"user_input": text, "session_id": session_id})
            except httpx.HTTPError as exc:
                result.statuses[f"error:{exc.__class__.__name__}"] += 1
            else:
                result.statuses[str(response.status_code)] += 1
                if response.status_code == 200:
                    result.acknowledged[response.json()["turn_id"]] = text
                elif response.status_code >= 500:
                    result.bodies_5xx.append(response.text)
            if pause:
                await asyncio.sleep(pause)

    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(concurrency)))


def run_load(
    base_url: str, session_id: str, total: int, *, concurrency: int = 8, pause: float = 0.0, label: str = "load"
) -> LoadResult:
    result = LoadResult()
    asyncio.run(_drive(base_url, session_id, total, concurrency, result, pause, label))
    return result


class BackgroundLoad:
    """run_load in a thread, so a test can break things while the load is running."""

    def __init__(self, base_url: str, session_id: str, total: int, **options: float | int | str) -> None:
        self.result = LoadResult()
        self._thread = threading.Thread(
            target=lambda: asyncio.run(
                _drive(
                    base_url,
                    session_id,
                    total,
                    int(options.get("concurrency", 8)),
                    self.result,
                    float(options.get("pause", 0.0)),
                    str(options.get("label", "load")),
                )
            ),
            daemon=True,
        )
        self._thread.start()

    def join(self, timeout: float = 300) -> LoadResult:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("the load did not finish")
        return self.result
