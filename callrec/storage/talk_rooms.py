"""Talk's per-room state in the catalog: the call recording status (`rooms.call_recording`) with the system messages
its changes post, and the recording consent log (`consents`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import exists, select, update

from callrec.domain import talk_room
from callrec.domain.notifications import NO_SESSION
from callrec.domain.talk_room import StatusChange
from callrec.domain.tokens import MEMBER_PREFIX
from callrec.storage.catalog import Catalog
from callrec.storage.rows import CallRow, ChatMessageRow, ConsentRow, RecordingRow, RoomRow


def display_name(call: CallRow | None, actor_id: str) -> str | None:
    """The name the call shows for `actor_id` (a participant's id or name), if it is in the call. A member who
    publishes is in the call by its id without `member:` (as its publish token names it)."""
    ids = {actor_id, actor_id.removeprefix(MEMBER_PREFIX)}
    for participant in call.participants if call is not None else []:
        if participant.get("id") in ids or participant.get("name") == actor_id:
            name = participant.get("name")
            return name if isinstance(name, str) else None
    return None


@dataclass(frozen=True)
class TalkRooms:
    catalog: Catalog

    async def set_status(self, change: StatusChange) -> int | None:
        """Applies `change`; the status before it, or None when it did not apply. The system message (if the change
        posts one) is written in the same transaction, its actor named as the call knows them (else by the name the
        change came with)."""
        named = change.actor
        if named is not None:  # read before the write lock is taken: writers wait for each other
            if (called := display_name(await self.catalog.get_call(change.room_id), named.id)) is not None:
                named = named.model_copy(update={"name": called})
        async with self.catalog.writing() as session:
            room = await session.get(RoomRow, change.room_id, with_for_update=True)
            if room is None or (change.only_from is not None and room.call_recording not in change.only_from):
                return None
            if change.recording_id is not None:
                mine = select(RecordingRow.creation_date).where(RecordingRow.recording_id == change.recording_id)
                newer = select(RecordingRow.recording_id).where(
                    RecordingRow.room_id == change.room_id, RecordingRow.creation_date > mine.scalar_subquery()
                )
                if await session.scalar(select(exists(newer))):
                    return None
            old = room.call_recording
            await session.execute(
                update(RoomRow).where(RoomRow.room_id == change.room_id).values(call_recording=change.status)
            )
            message = talk_room.system_message(old, change.status, has_actor=change.actor is not None)
            if message is not None:
                actor = named if named is not None else NO_SESSION
                if change.dedupe_key is not None and await session.scalar(
                    select(exists().where(ChatMessageRow.dedupe_key == change.dedupe_key))
                ):
                    return old
                session.add(
                    ChatMessageRow(
                        dedupe_key=change.dedupe_key,
                        room_id=change.room_id,
                        actor_type=actor.type,
                        actor_id=actor.id,
                        message=message,
                        parameters={} if actor.name is None else {"actorName": actor.name},
                        timestamp=int(time.time()),
                    )
                )
        return old

    async def set_consent(self, room_id: str, value: int) -> None:
        async with self.catalog.writing() as session:
            await session.execute(update(RoomRow).where(RoomRow.room_id == room_id).values(recording_consent=value))

    async def add_consent(self, room_id: str, actor_type: str, actor_id: str, call_started: int | None) -> None:
        async with self.catalog.writing() as session:
            session.add(
                ConsentRow(
                    room_id=room_id,
                    actor_type=actor_type,
                    actor_id=actor_id,
                    call_started=call_started,
                    timestamp=int(time.time() * 1000),
                )
            )

    async def consents(
        self, room_id: str | None = None, actor: tuple[str, str] | None = None, *, limit: int = 1000
    ) -> Sequence[ConsentRow]:
        """Oldest first; a room's or everyone's, an actor's (type, id) or everyone's."""
        async with self.catalog.sessions() as session:
            query = select(ConsentRow).order_by(ConsentRow.consent_id).limit(limit)
            if room_id is not None:
                query = query.where(ConsentRow.room_id == room_id)
            if actor is not None:
                query = query.where(ConsentRow.actor_type == actor[0], ConsentRow.actor_id == actor[1])
            return (await session.execute(query)).scalars().all()

    async def consented(self, room_id: str, call_started: int) -> set[str]:
        """The actor ids that consented to be recorded in this call of the room."""
        async with self.catalog.sessions() as session:
            query = select(ConsentRow.actor_id).where(
                ConsentRow.room_id == room_id, ConsentRow.call_started == call_started
            )
            return set((await session.execute(query)).scalars().all())
