"""Recorder-protocol nonces (replay protection) and the rooms' member-token generation (revocation).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

from typing import Literal

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "nonces",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("seen_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_nonces_seen_at", "nonces", ["seen_at"])
    # SQLite rebuilds the table ("always"), so its schema reads exactly as a fresh one would.
    recreate: Literal["always", "auto"] = "always" if op.get_context().dialect.name == "sqlite" else "auto"
    with op.batch_alter_table("rooms", recreate=recreate) as batch:
        batch.add_column(sa.Column("token_generation", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("rooms") as batch:
        batch.drop_column("token_generation")
    op.drop_table("nonces")
