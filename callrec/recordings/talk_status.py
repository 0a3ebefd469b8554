"""Talk's view of a room beside its recordings: the call recording status as the recording server's callbacks move
it, and recording consent before anyone is recorded."""

from __future__ import annotations

from callrec.domain import talk_room
from callrec.domain.notifications import Actor
from callrec.domain.settings import Settings
from callrec.domain.talk_room import StatusChange
from callrec.recordings import errors
from callrec.storage.catalog import Catalog
from callrec.storage.rows import CallRow, RoomRow
from callrec.storage.talk_rooms import TalkRooms


async def room_status_callback(catalog: Catalog, room_id: str, status: int, actor: Actor | None) -> None:
    """Talk's handling of a recording server's `started` / `stopped` / `failed`: the room's status is `status`
    from whatever it was (also with no recording to speak of)."""
    await TalkRooms(catalog).set_status(StatusChange(room_id=room_id, status=status, actor=actor))


async def check_consent(settings: Settings, catalog: Catalog, room: RoomRow, call: CallRow) -> None:
    """Where the room needs consent to be recorded, everyone in the call gave it when joining this call."""
    if not talk_room.effective_consent(settings.recording_consent, room.recording_consent):
        return
    consented = await TalkRooms(catalog).consented(room.room_id, call.started_date)
    missing = [str(p.get("name") or p.get("id")) for p in call.participants if p.get("id") not in consented]
    if missing:
        raise errors.ConsentMissing(room.room_id, missing)
