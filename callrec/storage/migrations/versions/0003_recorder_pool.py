"""The recorder pool: registered recorders, and the slots recordings hold on them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "recorders",
        sa.Column("recorder_id", sa.String(100), primary_key=True),
        sa.Column("url", sa.String(500), nullable=False),
        sa.Column("task_queue", sa.String(200), nullable=False),
        sa.Column("capacity", sa.Float(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("recordings", sa.Integer(), nullable=False),
        sa.Column("rooms", sa.JSON(), nullable=False),
        sa.Column("seen_at", sa.BigInteger(), nullable=False),
        sa.Column("registered_at", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "recorder_slots",
        sa.Column("recording_id", sa.String(512), primary_key=True),
        sa.Column("recorder_id", sa.String(100), nullable=False),
        sa.Column("room_id", sa.String(128), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_recorder_slots_recorder_id", "recorder_slots", ["recorder_id"])
    op.create_index("ix_recorder_slots_room_id", "recorder_slots", ["room_id"])


def downgrade() -> None:
    op.drop_index("ix_recorder_slots_room_id", "recorder_slots")
    op.drop_index("ix_recorder_slots_recorder_id", "recorder_slots")
    op.drop_table("recorder_slots")
    op.drop_table("recorders")
