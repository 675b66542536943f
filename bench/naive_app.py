"""The naive design the performance issue measured, rebuilt on today's packages: a reference, not convoflow.

Written the way the seed reads, on purpose without any of convoflow's work: sync routes, one Celery task and one
commit per saved turn, `.delay().get()` for history, a prefork worker, a one-node LangGraph graph. The issue's
memory figures (API 98 MB, worker 236 MB) were read with the packages of their day; this app, served and loaded
like convoflow in the same benchmark run, gives the same figures with the packages installed now.

API: `uvicorn bench.naive_app:app`; worker: `celery -A bench.naive_app:celery worker --concurrency=2`; both read
NAIVE_REDIS_URL and NAIVE_DATABASE_URL. `create_schema()` makes its one table.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from typing import Any, TypedDict

from celery import Celery
from fastapi import FastAPI
from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel
from sqlalchemy import DateTime, String, Text, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

REDIS_URL = os.environ.get("NAIVE_REDIS_URL", "redis://127.0.0.1:6379/0")
DATABASE_URL = os.environ.get("NAIVE_DATABASE_URL", "sqlite:///naive.db")

celery = Celery("naive", broker=REDIS_URL, backend=REDIS_URL)
celery.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"])
engine = create_engine(DATABASE_URL, pool_pre_ping=True)


class Base(DeclarativeBase):
    pass


class Turn(Base):
    __tablename__ = "naive_turns"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[str] = mapped_column(String(128), index=True)
    user_input: Mapped[str] = mapped_column(Text)
    ai_response: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def create_schema() -> None:
    Base.metadata.create_all(engine)


@celery.task
def save_conversation_task(user_input: str, ai_response: str, session_id: str) -> dict[str, Any]:
    with Session(engine) as session:
        session.add(
            Turn(session_id=session_id, user_input=user_input, ai_response=ai_response, created_at=datetime.now(UTC))
        )
        session.commit()
    return {"success": True}


@celery.task
def get_conversation_history_task(session_id: str, limit: int = 50) -> dict[str, Any]:
    with Session(engine) as session:
        rows = session.scalars(
            select(Turn).where(Turn.session_id == session_id).order_by(Turn.id.desc()).limit(limit)
        ).all()
        history = [
            {"user_input": row.user_input, "ai_response": row.ai_response, "timestamp": row.created_at.isoformat()}
            for row in rows
        ]
    return {"success": True, "count": len(history), "history": history}


class State(TypedDict, total=False):
    user_input: str
    answer: str


def respond(state: State) -> State:
    return {"answer": f"(offline) {state['user_input']}"}


_builder = StateGraph(State)
_builder.add_node("respond", respond)
_builder.add_edge(START, "respond")
_builder.add_edge("respond", END)
graph = _builder.compile()

app = FastAPI()


class RunBody(BaseModel):
    user_input: str
    session_id: str = "default"


@app.post("/run")
def run(body: RunBody) -> dict[str, str]:
    final = graph.invoke({"user_input": body.user_input})
    task = save_conversation_task.delay(body.user_input, final["answer"], body.session_id)
    return {"answer": final["answer"], "session_id": body.session_id, "turn_id": str(uuid.uuid4()), "task_id": task.id}


@app.get("/history")
def history(session_id: str, limit: int = 50) -> dict[str, Any]:
    result: dict[str, Any] = get_conversation_history_task.delay(session_id, limit).get(timeout=10)
    return result
