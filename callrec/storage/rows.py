"""The catalog's tables: rooms, their members and calls, recordings, notifications, chat messages, nonces and the
recorders' pool (the schema itself is the Alembic migrations'; these are its ORM rows).

One recording in progress per room is enforced by the database itself (a partial unique index on `room_id` over
the in-progress statuses), so it holds across API processes and races.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

IN_PROGRESS = ("starting", "active", "ending")
_IN_PROGRESS_SQL = text("status IN ('starting', 'active', 'ending')")


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[dict[str, Any]]: JSON, list[str]: JSON}


def new_secret() -> str:
    return secrets.token_urlsafe(24)


class RoomRow(Base):
    __tablename__ = "rooms"
    __table_args__ = (Index("ix_rooms_listing", "creation_date", "room_id"),)

    room_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    room_name: Mapped[str] = mapped_column(String(256))
    config: Mapped[dict[str, Any]]
    creation_date: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="open")
    lobby: Mapped[bool] = mapped_column(Boolean, default=False)
    moderator_secret: Mapped[str] = mapped_column(String(64), default=new_secret)
    speaker_secret: Mapped[str] = mapped_column(String(64), default=new_secret)
    # Member tokens carry the generation they were minted in; closing the room or rotating its secrets bumps it.
    token_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The user (user token subject) who created the room; NULL when the API key did. Meet's `owner`.
    owner: Mapped[str | None] = mapped_column(String(128), index=True, default=None)
    # Talk's `callRecording` (0 none, 1 video, 2 audio, 3/4 starting, 5 failed), as Talk moves it: by the accepted
    # start and the recording server's callbacks (`storage/talk_rooms.py`).
    call_recording: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Talk's `recordingConsent` of the room (0 or 1): counts when CALLREC_RECORDING_CONSENT is 2.
    recording_consent: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class RoomMemberRow(Base):
    """A registered room member (Meet 3.8's room members): a user (`user_id`) or an identified guest (`name`)."""

    __tablename__ = "room_members"

    room_id: Mapped[str] = mapped_column(ForeignKey("rooms.room_id", ondelete="CASCADE"), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    user_id: Mapped[str | None] = mapped_column(String(128), index=True)
    name: Mapped[str] = mapped_column(String(256))
    base_role: Mapped[str] = mapped_column(String(16))
    custom_permissions: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    membership_date: Mapped[int] = mapped_column(BigInteger)
    permissions_updated_at: Mapped[int] = mapped_column(BigInteger)


class CallRow(Base):
    __tablename__ = "calls"

    room_id: Mapped[str] = mapped_column(ForeignKey("rooms.room_id", ondelete="CASCADE"), primary_key=True)
    participants: Mapped[list[dict[str, Any]]]
    started_date: Mapped[int] = mapped_column(BigInteger)
    updated_date: Mapped[int] = mapped_column(BigInteger)


class RecordingRow(Base):
    __tablename__ = "recordings"
    __table_args__ = (
        Index(
            "uq_recordings_room_in_progress",
            "room_id",
            unique=True,
            sqlite_where=_IN_PROGRESS_SQL,
            postgresql_where=_IN_PROGRESS_SQL,
        ),
        # Keyset paging of the recordings list (storage/listing.py): one index seek per page for each sort.
        # PostgreSQL compares text by code point ("C") so it orders like SQLite.
        Index("ix_recordings_by_start_date", text("coalesce(start_date, -1)"), "recording_id").ddl_if(dialect="sqlite"),
        Index("ix_recordings_by_duration", text("coalesce(duration, -1)"), "recording_id").ddl_if(dialect="sqlite"),
        Index("ix_recordings_by_size", text("coalesce(size, -1)"), "recording_id").ddl_if(dialect="sqlite"),
        Index("ix_recordings_by_room_name", "room_name", "recording_id").ddl_if(dialect="sqlite"),
        Index(
            "ix_recordings_by_start_date_pg", text("coalesce(start_date, -1)"), text('recording_id COLLATE "C"')
        ).ddl_if(dialect="postgresql"),
        Index("ix_recordings_by_duration_pg", text("coalesce(duration, -1)"), text('recording_id COLLATE "C"')).ddl_if(
            dialect="postgresql"
        ),
        Index("ix_recordings_by_size_pg", text("coalesce(size, -1)"), text('recording_id COLLATE "C"')).ddl_if(
            dialect="postgresql"
        ),
        Index("ix_recordings_by_room_name_pg", text('room_name COLLATE "C"'), text('recording_id COLLATE "C"')).ddl_if(
            dialect="postgresql"
        ),
    )

    recording_id: Mapped[str] = mapped_column(String(512), primary_key=True)
    room_id: Mapped[str] = mapped_column(String(128), index=True)
    room_name: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(8), default="video")
    layout: Mapped[str] = mapped_column(String(32))
    encoding: Mapped[Any] = mapped_column(JSON)
    filename: Mapped[str] = mapped_column(String(600))
    start_date: Mapped[int | None] = mapped_column(BigInteger)
    end_date: Mapped[int | None] = mapped_column(BigInteger)
    duration: Mapped[float | None] = mapped_column(Float)
    size: Mapped[int | None] = mapped_column(BigInteger)
    error_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[str | None] = mapped_column(Text)
    object_key: Mapped[str | None] = mapped_column(String(1024))
    sha256: Mapped[str | None] = mapped_column(String(64))
    media: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)  # the workflow's projection number (ms-based)
    owner: Mapped[str | None] = mapped_column(String(128))
    egress_id: Mapped[str | None] = mapped_column(String(128), index=True)  # LiveKit's, when it records
    participants: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)  # in the call when it started
    public_secret: Mapped[str] = mapped_column(String(64), default=new_secret)
    private_secret: Mapped[str] = mapped_column(String(64), default=new_secret)
    creation_date: Mapped[int] = mapped_column(BigInteger)

    @property
    def gaps(self) -> list[dict[str, float]]:
        """Where recorders were lost mid-recording (kept with the media facts)."""
        found = (self.media or {}).get("gaps")
        return found if isinstance(found, list) else []


# SQLite numbers rows only through INTEGER PRIMARY KEY; PostgreSQL gets a bigint identity.
ROW_ID = BigInteger().with_variant(Integer(), "sqlite")


class NotificationRow(Base):
    """A notification for a person (`user`) and/or the moderators of a room; `dedupe_key` makes retries harmless."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_room_time", "room_id", "timestamp"),)

    notification_id: Mapped[int] = mapped_column(ROW_ID, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str | None] = mapped_column(String(600), unique=True)
    room_id: Mapped[str] = mapped_column(String(128))
    recording_id: Mapped[str | None] = mapped_column(String(512))
    user: Mapped[str | None] = mapped_column(String(128), index=True)
    moderators: Mapped[bool] = mapped_column(Boolean, default=False)
    subject: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    file_id: Mapped[int | None] = mapped_column(BigInteger)
    timestamp: Mapped[int] = mapped_column(BigInteger)  # seconds, UTC: how Talk clients name a notification
    state: Mapped[str] = mapped_column(String(16), default="open")  # open | dismissed | shared | expired


class ChatMessageRow(Base):
    """The room's chat log: Talk-style system messages about recordings, and shared recordings."""

    __tablename__ = "chat_messages"

    message_id: Mapped[int] = mapped_column(ROW_ID, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str | None] = mapped_column(String(600), unique=True)
    room_id: Mapped[str] = mapped_column(String(128), index=True)
    actor_type: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[str] = mapped_column(String(128))
    message: Mapped[str] = mapped_column(String(64))  # the system message: recording_started, file_shared, ...
    parameters: Mapped[dict[str, Any]]
    timestamp: Mapped[int] = mapped_column(BigInteger)


class ConsentRow(Base):
    """A participant agreed to be recorded when joining a room's call (Talk's consent log)."""

    __tablename__ = "consents"

    consent_id: Mapped[int] = mapped_column(ROW_ID, primary_key=True, autoincrement=True)
    room_id: Mapped[str] = mapped_column(ForeignKey("rooms.room_id", ondelete="CASCADE"), index=True)
    actor_type: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[str] = mapped_column(String(128))
    call_started: Mapped[int | None] = mapped_column(BigInteger)  # the call joined (its start, ms)
    timestamp: Mapped[int] = mapped_column(BigInteger)  # ms


class NonceRow(Base):
    """A recorder-protocol `random` that was accepted (as its SHA-256), kept for the replay window."""

    __tablename__ = "nonces"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[int] = mapped_column(BigInteger, index=True)  # seconds, UTC


class RecorderRow(Base):
    """A recorder of the pool, as it last registered (`storage/pool.py`)."""

    __tablename__ = "recorders"

    recorder_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    url: Mapped[str] = mapped_column(String(500))
    task_queue: Mapped[str] = mapped_column(String(200))
    capacity: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(16))
    recordings: Mapped[int] = mapped_column(Integer)
    rooms: Mapped[list[str]] = mapped_column(JSON)  # rooms whose WHIP publishers it holds
    seen_at: Mapped[int] = mapped_column(BigInteger)  # ms
    registered_at: Mapped[int] = mapped_column(BigInteger)  # ms


class SlotRow(Base):
    """A recording's place on a recorder: its cost counts against the recorder's capacity until released."""

    __tablename__ = "recorder_slots"

    recording_id: Mapped[str] = mapped_column(String(512), primary_key=True)
    recorder_id: Mapped[str] = mapped_column(String(100), index=True)
    room_id: Mapped[str] = mapped_column(String(128), index=True)
    cost: Mapped[float] = mapped_column(Float)
    created_at: Mapped[int] = mapped_column(BigInteger)
