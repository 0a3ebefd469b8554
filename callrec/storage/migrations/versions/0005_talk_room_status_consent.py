"""Talk's room recording status and recording consent: `rooms.call_recording`, `rooms.recording_consent` and the
consent log.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

from typing import Literal

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

# The status each room shows now, from its latest recording (as callrec derived it before this revision).
BACKFILL = """
UPDATE rooms SET call_recording = COALESCE((
    SELECT CASE
        WHEN r.status = 'starting' AND r.kind = 'audio' THEN 4
        WHEN r.status = 'starting' THEN 3
        WHEN r.status IN ('active', 'ending') AND r.kind = 'audio' THEN 2
        WHEN r.status IN ('active', 'ending') THEN 1
        WHEN r.status = 'failed' THEN 5
        ELSE 0 END
    FROM recordings r WHERE r.room_id = rooms.room_id
    ORDER BY r.creation_date DESC LIMIT 1), 0)
"""


def upgrade() -> None:
    recreate: Literal["always", "auto"] = "always" if op.get_context().dialect.name == "sqlite" else "auto"
    with op.batch_alter_table("rooms", recreate=recreate) as batch:
        batch.add_column(sa.Column("call_recording", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("recording_consent", sa.Integer(), nullable=False, server_default="0"))
    op.execute(BACKFILL)
    op.create_table(
        "consents",
        sa.Column("consent_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("room_id", sa.String(128), sa.ForeignKey("rooms.room_id", ondelete="CASCADE"), nullable=False),
        sa.Column("actor_type", sa.String(32), nullable=False),
        sa.Column("actor_id", sa.String(128), nullable=False),
        sa.Column("call_started", sa.BigInteger(), nullable=True),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
    )  # fmt: skip
    op.create_index("ix_consents_room_id", "consents", ["room_id"])


def downgrade() -> None:
    op.drop_index("ix_consents_room_id", table_name="consents")
    op.drop_table("consents")
    with op.batch_alter_table("rooms") as batch:
        batch.drop_column("recording_consent")
        batch.drop_column("call_recording")
