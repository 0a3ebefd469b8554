"""What a notification names besides its row: its room's name and its recording's file (one read per room and one
for all recordings), for the views of every front door."""

from __future__ import annotations

from collections.abc import Sequence

from callrec.api.services import services
from callrec.domain.talk_render import NotificationFacts
from callrec.domain.tokens import Principal
from callrec.storage.rows import NotificationRow


async def notification_facts(rows: Sequence[NotificationRow]) -> list[NotificationFacts]:
    catalog = services().catalog
    names: dict[str, str] = {}
    for room_id in {row.room_id for row in rows}:
        room = await catalog.get_room(room_id)
        names[room_id] = room.room_name if room is not None else room_id
    recordings = await catalog.recordings_by_id([row.recording_id for row in rows if row.recording_id is not None])
    facts = []
    for row in rows:
        recording = recordings.get(row.recording_id) if row.recording_id is not None else None
        facts.append(
            NotificationFacts(
                notification_id=row.notification_id,
                user=row.user,
                timestamp=row.timestamp,
                subject=row.subject,
                room_id=row.room_id,
                room_name=names[row.room_id],
                recording_id=row.recording_id,
                file_id=row.file_id,
                filename=recording.filename if recording is not None else None,
                message=row.message,
            )
        )
    return facts


async def callers_notifications(
    who: Principal, room_id: str | None = None, notification_id: int | None = None
) -> Sequence[NotificationRow]:
    """The caller's open notifications (or the one of `notification_id`, if it is the caller's), newest first: a
    user token's and a member token's own (a moderator member also its room's moderator ones, from before
    notifications went to owners only); the API key's: all of them."""
    catalog = services().catalog
    if who.kind == "api_key":
        return await catalog.notifications(room_id=room_id, notification_id=notification_id)
    if who.kind == "user":
        return await catalog.notifications(room_id=room_id, user=who.subject, notification_id=notification_id)
    return await catalog.notifications(
        room_id=who.room_id, user=who.subject, moderators=who.role == "moderator", notification_id=notification_id
    )
