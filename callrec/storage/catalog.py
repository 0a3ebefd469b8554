"""The catalog: rooms, calls and the recordings projection, in SQLite or PostgreSQL (its rows: `rows.py`)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sqlite3
from collections.abc import AsyncIterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import (
    and_,
    event,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy import delete as sql_delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from callrec.domain.recording import RecordingStatus
from callrec.domain.settings import Settings
from callrec.storage.private import private_sqlite_file, restrict_dir
from callrec.storage.rows import (
    IN_PROGRESS,
    CallRow,
    ChatMessageRow,
    ConsentRow,
    NonceRow,
    NotificationRow,
    RecordingRow,
    RoomRow,
    new_secret,
)
from callrec.storage.sqlite_reads import RecordingReader
from callrec.storage.textmatch import MatchMode, condition, install_sqlite_regex

Deduped = TypeVar("Deduped", NotificationRow, ChatMessageRow)


class RoomNotFound(Exception):
    pass


class RecordingInProgress(Exception):
    """Another recording of the room is starting, active or ending."""


def make_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        private_sqlite_file(url)  # 0600 (its -wal and -shm follow), not the umask's mode
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()
            install_sqlite_regex(dbapi_conn)  # `regex` name filters (textmatch.py)

        return engine
    return create_async_engine(url, pool_pre_ping=True)


async def create_schema(engine: AsyncEngine) -> None:
    """Upgrade the catalog to the newest Alembic revision (callrec/storage/migrations); a no-op when it is there.

    Safe to run from several processes at once: see `upgrade_engine`. A database that the old `create_all` built has
    no alembic_version table and fails here ("table ... already exists").
    """
    from callrec.storage.migrations import upgrade_engine

    await upgrade_engine(engine)


async def migrate(settings: Settings) -> None:
    """Creates or upgrades the catalog named by the settings (`callrec migrate`)."""
    if settings.database_url is None:
        restrict_dir(settings.data_dir)
    engine = make_engine(settings.catalog_url)
    try:
        await create_schema(engine)
    finally:
        await engine.dispose()


# Expired recorder nonces are deleted at most this often by each process (not on every signed request).
NONCE_PRUNE_EVERY_S = 60


class Catalog:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)
        # SQLite has one writer at a time, and a writer that finds the database locked sleeps in SQLite's busy
        # handler (up to 100 ms a time) even after the lock is free. Queueing this process's writers here instead
        # keeps them from colliding: with 30 concurrent recordings, the worker's database threads were in that
        # sleep in 37% of py-spy's samples, and queueing raised the recordings completed per second by about 20%.
        self._write_lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        database = engine.url.database if engine.dialect.name == "sqlite" else None
        on_disk = database is not None and database not in ("", ":memory:") and not database.startswith("file:")
        self._recording_reader = RecordingReader(database, engine.dialect) if database and on_disk else None
        self._nonces_pruned_at = 0  # when this process last deleted the expired nonces (Unix seconds)

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction that commits on success; SQLite's writers in this process take turns."""
        async with self._write_lock or contextlib.nullcontext(), self.sessions.begin() as session:
            yield session

    @classmethod
    def from_url(cls, url: str) -> Catalog:
        return cls(make_engine(url))

    async def close(self) -> None:
        if self._recording_reader is not None:
            self._recording_reader.close()
        await self.engine.dispose()

    async def check(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    # recorder-protocol nonces
    async def remember_nonce(self, random: str, now_s: int, keep_s: float) -> bool:
        """True the first time `random` is seen within `keep_s`; False for a replay. Forgets older ones, at most
        once every NONCE_PRUNE_EVERY_S in this process (until then an older one is still refused)."""
        digest = hashlib.sha256(random.encode()).hexdigest()
        prune = now_s - self._nonces_pruned_at >= NONCE_PRUNE_EVERY_S
        try:
            async with self.writing() as session:
                if prune:
                    await session.execute(sql_delete(NonceRow).where(NonceRow.seen_at < now_s - int(keep_s)))
                session.add(NonceRow(digest=digest, seen_at=now_s))
        except IntegrityError:
            return False
        if prune:
            self._nonces_pruned_at = now_s
        return True

    async def forget_nonce(self, random: str) -> None:
        """Undoes `remember_nonce` for a request answered "try again" (5xx): its retry may carry the same random."""
        digest = hashlib.sha256(random.encode()).hexdigest()
        async with self.writing() as session:
            await session.execute(sql_delete(NonceRow).where(NonceRow.digest == digest))

    # rooms
    async def add_room(self, room: RoomRow) -> RoomRow:
        async with self.writing() as session:
            session.add(room)
        return room

    async def get_room(self, room_id: str) -> RoomRow | None:
        async with self.sessions() as session:
            return await session.get(RoomRow, room_id)

    async def set_room_config(self, room_id: str, config: dict[str, Any]) -> RoomRow:
        async with self.writing() as session:
            room = await session.get(RoomRow, room_id)
            if room is None:
                raise RoomNotFound(room_id)
            room.config = config
        return room

    # calls
    async def put_call(self, room_id: str, participants: list[dict[str, Any]], now_ms: int) -> CallRow:
        async with self.writing() as session:
            if await session.get(RoomRow, room_id) is None:
                raise RoomNotFound(room_id)
            call = await session.get(CallRow, room_id)
            if call is None:
                call = CallRow(room_id=room_id, participants=participants, started_date=now_ms, updated_date=now_ms)
                session.add(call)
            else:
                call.participants = participants
                call.updated_date = now_ms
        return call

    async def join_call(self, room_id: str, participant: dict[str, Any], now_ms: int) -> tuple[list[Any], CallRow]:
        """Adds (or replaces, by id) one participant, starting the call if there is none; the participants
        before, and the call now. Read and written in one transaction, so joins and leaves never lose each other."""
        async with self.writing() as session:
            if await session.get(RoomRow, room_id) is None:
                raise RoomNotFound(room_id)
            call = await session.get(CallRow, room_id, with_for_update=True)
            if call is None:
                call = CallRow(room_id=room_id, participants=[], started_date=now_ms, updated_date=now_ms)
                session.add(call)
            before = list(call.participants)
            call.participants = [p for p in before if p.get("id") != participant["id"]] + [participant]
            call.updated_date = now_ms
        return before, call

    async def leave_call(self, room_id: str, participant_id: str, now_ms: int) -> bool:
        """Removes one participant from the call; False when it was not in it."""
        async with self.writing() as session:
            call = await session.get(CallRow, room_id, with_for_update=True)
            if call is None or not any(p.get("id") == participant_id for p in call.participants):
                return False
            call.participants = [p for p in call.participants if p.get("id") != participant_id]
            call.updated_date = now_ms
        return True

    async def get_call(self, room_id: str) -> CallRow | None:
        async with self.sessions() as session:
            return await session.get(CallRow, room_id)

    async def end_call(self, room_id: str) -> bool:
        async with self.writing() as session:
            call = await session.get(CallRow, room_id)
            if call is None:
                return False
            await session.delete(call)
        return True

    # recordings
    async def add_recording(self, row: RecordingRow) -> RecordingRow:
        try:
            async with self.writing() as session:
                session.add(row)
        except IntegrityError as exc:
            raise RecordingInProgress(row.room_id) from exc
        return row

    async def get_recording(self, recording_id: str) -> RecordingRow | None:
        if self._recording_reader is not None:
            with contextlib.suppress(sqlite3.Error):
                return self._recording_reader.get(recording_id)
        async with self.sessions() as session:
            return await session.get(RecordingRow, recording_id)

    async def recording_in_progress(self, room_id: str) -> RecordingRow | None:
        async with self.sessions() as session:
            result = await session.execute(
                select(RecordingRow).where(RecordingRow.room_id == room_id, RecordingRow.status.in_(IN_PROGRESS))
            )
            return result.scalars().first()

    async def set_egress_id(self, recording_id: str, egress_id: str) -> None:
        async with self.writing() as session:
            await session.execute(
                update(RecordingRow).where(RecordingRow.recording_id == recording_id).values(egress_id=egress_id)
            )

    async def recording_by_egress(self, egress_id: str) -> RecordingRow | None:
        async with self.sessions() as session:
            found = await session.execute(select(RecordingRow).where(RecordingRow.egress_id == egress_id))
            return found.scalars().first()

    async def project_recording(self, recording_id: str, seq: int, fields: dict[str, Any]) -> bool:
        """Apply the workflow's state number `seq` unless a newer one is already there.

        Returns False when nothing changed (row gone, or a newer or equal projection applied).
        """
        return await self.apply_projection(recording_id, seq, fields) is not None

    async def apply_projection(self, recording_id: str, seq: int, fields: dict[str, Any]) -> str | None:
        """`project_recording` that tells the status the row had before this write; None when nothing changed.

        Of two writers racing with the same `seq`, one applies: the other's update finds `seq` taken (PostgreSQL
        re-checks the condition once the first commits; SQLite's writers in a process take turns)."""
        async with self.writing() as session:
            before = await session.scalar(
                select(RecordingRow.status).where(RecordingRow.recording_id == recording_id, RecordingRow.seq < seq)
            )
            if before is None:
                return None
            result = await session.execute(
                update(RecordingRow)
                .where(RecordingRow.recording_id == recording_id, RecordingRow.seq < seq)
                .values(seq=seq, **fields)
            )
        return before if getattr(result, "rowcount", 0) else None

    async def count_in_progress(self) -> dict[str, int]:
        """Recordings by status, of those not ended (starting, active, ending)."""
        async with self.sessions() as session:
            rows = await session.execute(
                select(RecordingRow.status, func.count())
                .where(RecordingRow.status.in_([status.value for status in RecordingStatus if status.in_progress]))
                .group_by(RecordingRow.status)
            )
            return {str(status): int(count) for status, count in rows.all()}

    async def record_progress(self, recording_id: str, duration_s: float, size: int) -> None:
        """Duration and bytes so far of an active recording (its recorder's report)."""
        async with self.writing() as session:
            await session.execute(
                update(RecordingRow)
                .where(RecordingRow.recording_id == recording_id, RecordingRow.status == "active")
                .values(duration=round(duration_s, 3), size=size)
            )

    async def recordings(
        self,
        *,
        room_id: str | None = None,
        status: str | None = None,
        created_since_ms: int | None = None,
        limit: int = 100,
    ) -> Sequence[RecordingRow]:
        async with self.sessions() as session:
            query = select(RecordingRow).order_by(RecordingRow.creation_date.desc(), RecordingRow.recording_id.desc())
            if room_id is not None:
                query = query.where(RecordingRow.room_id == room_id)
            if status is not None:
                query = query.where(RecordingRow.status == status)
            if created_since_ms is not None:
                query = query.where(RecordingRow.creation_date >= created_since_ms)
            return (await session.execute(query.limit(limit))).scalars().all()

    async def recordings_by_id(self, recording_ids: Sequence[str]) -> dict[str, RecordingRow]:
        """The recordings among `recording_ids` that exist, by id (queried in batches: databases cap parameters)."""
        ids = list(dict.fromkeys(recording_ids))
        found: dict[str, RecordingRow] = {}
        async with self.sessions() as session:
            for start in range(0, len(ids), 500):
                query = select(RecordingRow).where(RecordingRow.recording_id.in_(ids[start : start + 500]))
                found.update((row.recording_id, row) for row in (await session.execute(query)).scalars())
        return found

    async def delete_recording(self, recording_id: str) -> bool:
        """Delete the row of a recording that is not in progress, in one statement.

        Returns False when nothing was deleted: no such row, or it is starting, active or ending. Its notifications
        go with it.
        """
        async with self.writing() as session:
            result = await session.execute(
                sql_delete(RecordingRow)
                .where(RecordingRow.recording_id == recording_id, RecordingRow.status.not_in(IN_PROGRESS))
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0):  # its notifications name a file that is gone
                await session.execute(sql_delete(NotificationRow).where(NotificationRow.recording_id == recording_id))
        return bool(getattr(result, "rowcount", 0))

    async def withdraw_recording(self, recording_id: str) -> None:
        """Removes the row of a start that never began (no recorder had room): it reserved the room, nothing else."""
        async with self.writing() as session:
            await session.execute(
                sql_delete(RecordingRow)
                .where(RecordingRow.recording_id == recording_id, RecordingRow.status == "starting")
                .execution_options(synchronize_session=False)
            )

    # notifications
    async def add_notification(self, row: NotificationRow) -> NotificationRow:
        """Inserts the notification, or returns the one already stored under its `dedupe_key`."""
        return await self._add_once(row, NotificationRow)

    async def notifications(
        self,
        *,
        room_id: str | None = None,
        user: str | None = None,
        moderators: bool = False,
        notification_id: int | None = None,
        limit: int = 200,
    ) -> Sequence[NotificationRow]:
        """Open notifications, newest first: those of `user`, plus the room's moderator ones when `moderators`.

        With neither `user` nor `moderators`, all of them (an admin's view).
        """
        async with self.sessions() as session:
            query = select(NotificationRow).where(NotificationRow.state == "open")
            if room_id is not None:
                query = query.where(NotificationRow.room_id == room_id)
            if notification_id is not None:
                query = query.where(NotificationRow.notification_id == notification_id)
            audience = []
            if user is not None:
                audience.append(NotificationRow.user == user)
            if moderators:
                audience.append(NotificationRow.moderators.is_(True))
            if audience:
                query = query.where(or_(*audience))
            query = query.order_by(NotificationRow.notification_id.desc()).limit(limit)
            return (await session.execute(query)).scalars().all()

    async def room_notifications_at(self, room_id: str, timestamp: int) -> Sequence[NotificationRow]:
        async with self.sessions() as session:
            query = select(NotificationRow).where(
                NotificationRow.room_id == room_id, NotificationRow.timestamp == timestamp
            )
            return (await session.execute(query)).scalars().all()

    async def close_notifications(
        self,
        state: str,
        *,
        recording_id: str | None = None,
        notification_id: int | None = None,
        subject: str | None = None,
        before_timestamp: int | None = None,
    ) -> int:
        """Closes the open notifications of a recording, one notification, or those of a subject posted before a
        time (seconds), as dismissed, shared or expired."""
        query = update(NotificationRow).where(NotificationRow.state == "open").values(state=state)
        if recording_id is not None:
            query = query.where(NotificationRow.recording_id == recording_id)
        if notification_id is not None:
            query = query.where(NotificationRow.notification_id == notification_id)
        if subject is not None:
            query = query.where(NotificationRow.subject == subject)
        if before_timestamp is not None:
            query = query.where(NotificationRow.timestamp < before_timestamp)
        async with self.writing() as session:
            result = await session.execute(query)
        return int(getattr(result, "rowcount", 0))

    # chat
    async def add_chat_message(self, row: ChatMessageRow) -> ChatMessageRow:
        """Posts the message once: a retry with the same `dedupe_key` returns the message already posted."""
        return await self._add_once(row, ChatMessageRow)

    async def _add_once(self, row: Deduped, model: type[Deduped]) -> Deduped:
        """Inserts `row`; if its `dedupe_key` is taken (a retried activity), returns the row stored before."""
        try:
            async with self.writing() as session:
                session.add(row)
        except IntegrityError:
            async with self.sessions() as session:
                found = await session.execute(select(model).where(model.dedupe_key == row.dedupe_key))
                return found.scalars().one()
        return row

    async def chat_messages(self, room_id: str, *, after: int = 0, limit: int = 100) -> Sequence[ChatMessageRow]:
        """Oldest first, from the message after `after` on."""
        async with self.sessions() as session:
            query = (
                select(ChatMessageRow)
                .where(ChatMessageRow.room_id == room_id, ChatMessageRow.message_id > after)
                .order_by(ChatMessageRow.message_id)
                .limit(limit)
            )
            return (await session.execute(query)).scalars().all()

    async def set_room_lobby(self, room_id: str, enabled: bool) -> RoomRow:
        async with self.writing() as session:
            room = await session.get(RoomRow, room_id)
            if room is None:
                raise RoomNotFound(room_id)
            room.lobby = enabled
        return room

    async def list_rooms(
        self,
        limit: int,
        after: tuple[int, str] | None = None,
        *,
        room_name: str | None = None,
        match: MatchMode = MatchMode.EXACT,
        case_insensitive: bool = False,
        status: str | None = None,
        room_ids: Sequence[str] | None = None,
    ) -> Sequence[RoomRow]:
        """Newest first, keyset-paged on (creation_date, room_id); optionally only rooms whose name matches
        (textmatch.py), of one status, and among `room_ids`."""
        async with self.sessions() as session:
            query = select(RoomRow).order_by(RoomRow.creation_date.desc(), RoomRow.room_id.desc())
            if room_ids is not None:
                query = query.where(RoomRow.room_id.in_(room_ids))
            if room_name is not None:
                dialect = self.engine.dialect.name
                query = query.where(condition(RoomRow.room_name, room_name, match, case_insensitive, dialect))
            if status is not None:
                query = query.where(RoomRow.status == status)
            if after is not None:
                date, room_id = after
                query = query.where(
                    or_(RoomRow.creation_date < date, and_(RoomRow.creation_date == date, RoomRow.room_id < room_id))
                )
            return (await session.execute(query.limit(limit))).scalars().all()

    async def set_room_status(self, room_id: str, status: str) -> None:
        async with self.writing() as session:
            room = await session.get(RoomRow, room_id)
            if room is None:
                raise RoomNotFound(room_id)
            room.status = status

    async def revoke_member_tokens(self, room_id: str, *, new_secrets: bool = False) -> RoomRow:
        """Bumps the room's token generation (its member tokens stop working); with `new_secrets`, also replaces
        the moderator and speaker secrets (the old ones no longer exchange for tokens). One statement each way,
        so concurrent bumps never lose one."""
        values: dict[str, Any] = {"token_generation": RoomRow.token_generation + 1}
        if new_secrets:
            values |= {"moderator_secret": new_secret(), "speaker_secret": new_secret()}
        async with self.writing() as session:
            result = await session.execute(update(RoomRow).where(RoomRow.room_id == room_id).values(**values))
            if not getattr(result, "rowcount", 0):
                raise RoomNotFound(room_id)
        room = await self.get_room(room_id)
        if room is None:
            raise RoomNotFound(room_id)
        return room

    async def delete_room(self, room_id: str) -> bool:
        """Deletes the room, its call, chat, notifications and consent log; its recordings must be gone already."""
        async with self.writing() as session:
            await session.execute(sql_delete(CallRow).where(CallRow.room_id == room_id))
            await session.execute(sql_delete(ChatMessageRow).where(ChatMessageRow.room_id == room_id))
            await session.execute(sql_delete(NotificationRow).where(NotificationRow.room_id == room_id))
            await session.execute(sql_delete(ConsentRow).where(ConsentRow.room_id == room_id))
            result = await session.execute(sql_delete(RoomRow).where(RoomRow.room_id == room_id))
        return bool(getattr(result, "rowcount", 0))
