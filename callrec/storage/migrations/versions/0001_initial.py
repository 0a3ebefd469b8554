"""Initial catalog: rooms, calls, recordings, notifications, chat_messages.

Revision ID: 0001
Revises:
Create Date: 2025-12-02

What `Base.metadata.create_all` built before migrations, as a frozen copy rather than an import of the models:
later revisions change the schema, never this file.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

IN_PROGRESS_SQL = "status IN ('starting', 'active', 'ending')"
# SQLite numbers rows only through INTEGER PRIMARY KEY; PostgreSQL gets a bigint (BIGSERIAL).
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    dialect = op.get_context().dialect.name

    op.create_table(
        "rooms",
        sa.Column("room_id", sa.String(128), primary_key=True),
        sa.Column("room_name", sa.String(256), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("creation_date", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("lobby", sa.Boolean(), nullable=False),
        sa.Column("moderator_secret", sa.String(64), nullable=False),
        sa.Column("speaker_secret", sa.String(64), nullable=False),
    )
    op.create_index("ix_rooms_listing", "rooms", ["creation_date", "room_id"])

    op.create_table(
        "calls",
        sa.Column("room_id", sa.String(128), sa.ForeignKey("rooms.room_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("participants", sa.JSON(), nullable=False),
        sa.Column("started_date", sa.BigInteger(), nullable=False),
        sa.Column("updated_date", sa.BigInteger(), nullable=False),
    )

    op.create_table(
        "recordings",
        sa.Column("recording_id", sa.String(512), primary_key=True),
        sa.Column("room_id", sa.String(128), nullable=False),
        sa.Column("room_name", sa.String(256), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("layout", sa.String(32), nullable=False),
        sa.Column("encoding", sa.JSON(), nullable=False),
        sa.Column("filename", sa.String(600), nullable=False),
        sa.Column("start_date", sa.BigInteger(), nullable=True),
        sa.Column("end_date", sa.BigInteger(), nullable=True),
        sa.Column("duration", sa.Float(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(64), nullable=True),
        sa.Column("details", sa.Text(), nullable=True),
        sa.Column("object_key", sa.String(1024), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("media", sa.JSON(), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("owner", sa.String(128), nullable=True),
        sa.Column("egress_id", sa.String(128), nullable=True),
        sa.Column("participants", sa.JSON(), nullable=True),
        sa.Column("public_secret", sa.String(64), nullable=False),
        sa.Column("private_secret", sa.String(64), nullable=False),
        sa.Column("creation_date", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_recordings_room_id", "recordings", ["room_id"])
    op.create_index("ix_recordings_status", "recordings", ["status"])
    op.create_index("ix_recordings_egress_id", "recordings", ["egress_id"])
    # One recording in progress per room, enforced by the database across API processes.
    op.create_index(
        "uq_recordings_room_in_progress",
        "recordings",
        ["room_id"],
        unique=True,
        sqlite_where=sa.text(IN_PROGRESS_SQL),
        postgresql_where=sa.text(IN_PROGRESS_SQL),
    )
    # Keyset paging of the recordings list (storage/listing.py); PostgreSQL compares text by code point ("C").
    if dialect == "sqlite":
        for name, column in (("start_date", "start_date"), ("duration", "duration"), ("size", "size")):
            op.create_index(
                f"ix_recordings_by_{name}", "recordings", [sa.text(f"coalesce({column}, -1)"), "recording_id"]
            )
        op.create_index("ix_recordings_by_room_name", "recordings", ["room_name", "recording_id"])
    elif dialect == "postgresql":
        for name, column in (("start_date", "start_date"), ("duration", "duration"), ("size", "size")):
            op.create_index(
                f"ix_recordings_by_{name}_pg",
                "recordings",
                [sa.text(f"coalesce({column}, -1)"), sa.text('recording_id COLLATE "C"')],
            )
        op.create_index(
            "ix_recordings_by_room_name_pg",
            "recordings",
            [sa.text('room_name COLLATE "C"'), sa.text('recording_id COLLATE "C"')],
        )

    op.create_table(
        "notifications",
        sa.Column("notification_id", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("dedupe_key", sa.String(600), nullable=True),
        sa.Column("room_id", sa.String(128), nullable=False),
        sa.Column("recording_id", sa.String(512), nullable=True),
        sa.Column("user", sa.String(128), nullable=True),
        sa.Column("moderators", sa.Boolean(), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("file_id", sa.BigInteger(), nullable=True),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.UniqueConstraint("dedupe_key"),
    )
    op.create_index("ix_notifications_room_time", "notifications", ["room_id", "timestamp"])
    op.create_index("ix_notifications_user", "notifications", ["user"])

    op.create_table(
        "chat_messages",
        sa.Column("message_id", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("dedupe_key", sa.String(600), nullable=True),
        sa.Column("room_id", sa.String(128), nullable=False),
        sa.Column("actor_type", sa.String(32), nullable=False),
        sa.Column("actor_id", sa.String(128), nullable=False),
        sa.Column("message", sa.String(64), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("dedupe_key"),
    )
    op.create_index("ix_chat_messages_room_id", "chat_messages", ["room_id"])


def downgrade() -> None:
    # Dropping a table drops its indexes (and, on PostgreSQL, the sequences of its BIGSERIAL keys).
    for table in ("chat_messages", "notifications", "recordings", "calls", "rooms"):
        op.drop_table(table)
