"""Room ownership (the user who created a room) and registered room members (OpenVidu Meet 3.8's).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

from typing import Literal

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # SQLite rebuilds the table ("always"), so its schema reads exactly as a fresh one would.
    recreate: Literal["always", "auto"] = "always" if op.get_context().dialect.name == "sqlite" else "auto"
    with op.batch_alter_table("rooms", recreate=recreate) as batch:
        batch.add_column(sa.Column("owner", sa.String(128), nullable=True))
    op.create_index("ix_rooms_owner", "rooms", ["owner"])
    op.create_table(
        "room_members",
        sa.Column("room_id", sa.String(128), sa.ForeignKey("rooms.room_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("member_id", sa.String(128), primary_key=True),
        sa.Column("user_id", sa.String(128), nullable=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("base_role", sa.String(16), nullable=False),
        sa.Column("custom_permissions", sa.JSON(), nullable=True),
        sa.Column("membership_date", sa.BigInteger(), nullable=False),
        sa.Column("permissions_updated_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_room_members_user_id", "room_members", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_room_members_user_id", table_name="room_members")
    op.drop_table("room_members")
    op.drop_index("ix_rooms_owner", table_name="rooms")
    with op.batch_alter_table("rooms") as batch:
        batch.drop_column("owner")
