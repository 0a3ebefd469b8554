"""A room's call (Meet's "meeting"): who is in it, whichever side reports it (the app's `PUT /rooms/{id}/call`,
LiveKit's webhooks, WHIP publishers reaching a recorder), the recording `autoStart` begins when the call reaches
its point, and the call's end, which stops the room's recording.

A call's start and end are announced as OpenVidu Meet announces them, `meetingStarted` / `meetingEnded` with the
room as `data` (`room_events`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from callrec.domain.layout import RecordingConfig
from callrec.domain.participants import Participant
from callrec.domain.recording import RecordingKind
from callrec.recordings import errors, room_events
from callrec.recordings.service import RecordingsService, now_ms
from callrec.recordings.talk_status import check_consent
from callrec.storage.catalog import RoomNotFound
from callrec.storage.rows import CallRow, RoomRow

log = logging.getLogger(__name__)


@dataclass
class Calls:
    recordings: RecordingsService

    async def put(self, room: RoomRow, participants: list[dict[str, Any]]) -> CallRow:
        """The call's participants are now `participants` (the call starts if there is none)."""
        previous, call = await self.replace(room, participants)
        await self.changed(room, previous, call)
        return call

    async def replace(self, room: RoomRow, participants: list[dict[str, Any]]) -> tuple[CallRow | None, CallRow]:
        """`put`'s catalog write alone (for a caller that serialises its writes): the call before, and now. The
        caller then passes both to `changed`, outside its lock."""
        catalog = self.recordings.catalog
        previous = await catalog.get_call(room.room_id)
        try:
            call = await catalog.put_call(room.room_id, participants, now_ms())
        except RoomNotFound as exc:
            raise errors.RoomNotFound(room.room_id) from exc
        return previous, call

    async def changed(self, room: RoomRow, previous: CallRow | None, call: CallRow) -> None:
        """What follows a change of the call: `meetingStarted` for a new one, and the room's `autoStart`."""
        if previous is None:
            await self.announce("meetingStarted", room, call.started_date)
        before = [Participant.model_validate(p) for p in previous.participants] if previous else []
        await self.auto_start(room, before, call)

    async def join(self, room_id: str, participant: Participant) -> None:
        """A WHIP publisher's media reached the recorder: it is in the call (which starts if there is none)."""
        room = await self.recordings.room(room_id)
        now = now_ms()
        before, call = await self.recordings.catalog.join_call(room_id, participant.model_dump(mode="json"), now)
        if not before and call.started_date == now:
            await self.announce("meetingStarted", room, call.started_date)
        await self.auto_start(room, [Participant.model_validate(p) for p in before], call)

    async def leave(self, room_id: str, participant_id: str, *, end_when_empty: bool = False) -> None:
        """`end_when_empty`: the last participant leaving ends the call (Talk's), and so stops its recording. WHIP
        presence does not: a publisher reconnecting through a recorder's loss would end it."""
        catalog = self.recordings.catalog
        await catalog.leave_call(room_id, participant_id, now_ms())
        call = await catalog.get_call(room_id)
        if end_when_empty and call is not None and not call.participants:
            await self.end(await self.recordings.room(room_id))

    async def end(self, room: RoomRow) -> bool:
        """Ends the room's call and stops its recording in progress (it is stored); False when there was none."""
        catalog = self.recordings.catalog
        call = await catalog.get_call(room.room_id)
        if call is None or not await catalog.end_call(room.room_id):
            return False
        recording = await catalog.recording_in_progress(room.room_id)
        if recording is not None:
            await self.recordings.end(recording.recording_id, "call_ended")
        await self.announce("meetingEnded", room, call.started_date)
        return True

    async def announce(self, event: room_events.RoomEvent, room: RoomRow, started_date: int) -> None:
        """`event` for the call of `room` that started at `started_date` (each call's once)."""
        svc = self.recordings
        payload = room_events.room_payload(room)
        await room_events.announce(svc.settings, svc.temporal, event, payload, str(started_date), now_ms())

    async def auto_start(self, room: RoomRow, before: Sequence[Participant], call: CallRow) -> None:
        """Starts a recording when the call's change is the one the room's `autoStart` waits for."""
        config = RecordingConfig.model_validate(room.config)
        now = [Participant.model_validate(p) for p in call.participants]
        owner = auto_start_owner(config, before, now)
        if owner is None:
            return
        try:
            await check_consent(self.recordings.settings, self.recordings.catalog, room, call)
            await self.recordings.begin(room, config, RecordingKind.VIDEO, call, owner)
        except errors.ConsentMissing as exc:
            log.info("autoStart of room %s waits: %s", room.room_id, exc)
        except errors.RoomAlreadyRecording:
            pass  # someone started one already
        except errors.EncodingNotSupported as exc:
            log.warning("autoStart of room %s refused: %s", room.room_id, exc)
        except errors.ServiceUnavailable as exc:
            log.warning("autoStart of room %s failed: %s", room.room_id, exc)


def auto_start_owner(config: RecordingConfig, before: Sequence[Participant], now: Sequence[Participant]) -> str | None:
    """Who starts the recording by joining, under the room's `autoStart`; None when nobody does."""
    if not config.enabled or config.autoStart == "off":
        return None
    if config.autoStart == "when_first_participant_joins":
        joined = list(now) if not before else []
    else:
        joined = [p for p in now if p.role == "moderator"] if not any(p.role == "moderator" for p in before) else []
    return (joined[0].id or joined[0].name) if joined else None
