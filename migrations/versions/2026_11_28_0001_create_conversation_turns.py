"""Create the conversation_turns table.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from convoflow.db.models import LongText, TurnPk, UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "conversation_turns",
        sa.Column("id", TurnPk, primary_key=True, autoincrement=True),
        sa.Column("turn_id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.String(128), nullable=False),
        sa.Column("user_input", LongText, nullable=False),
        sa.Column("ai_response", LongText, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("model", sa.String(128), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.Column("timestamp", UTCDateTime(), nullable=False),
        sa.Column("stored_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_turns")),
        sa.UniqueConstraint("turn_id", name=op.f("uq_conversation_turns_turn_id")),
    )
    op.create_index(op.f("ix_conversation_turns_session_id"), "conversation_turns", ["session_id"])
    op.create_index(op.f("ix_conversation_turns_timestamp"), "conversation_turns", ["timestamp"])
    op.create_index("ix_conversation_turns_session_id_timestamp", "conversation_turns", ["session_id", "timestamp"])


def downgrade() -> None:
    op.drop_table("conversation_turns")
