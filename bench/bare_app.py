"""The ceiling for /run: a FastAPI endpoint that validates the same body and answers JSON, nothing else."""

from __future__ import annotations

import uuid

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


class Body(BaseModel):
    user_input: str
    session_id: str | None = None


@app.post("/run")
async def run(body: Body) -> dict[str, str]:
    return {"answer": body.user_input, "session_id": body.session_id or "", "turn_id": str(uuid.uuid4()), "task_id": ""}
