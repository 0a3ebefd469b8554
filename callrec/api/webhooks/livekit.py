"""`POST /livekit/webhook`: LiveKit's webhooks, which drive recordings made by LiveKit Egress and the call presence.

No API key: LiveKit signs each webhook (an `Authorization` JWT issued with the API key and signed with the
API secret, carrying the sha256 of the body), and `livekit-api`'s own `WebhookReceiver` checks both; anything
else is a 401 (counted for brute force, as bad recording-server checksums are: 429 after too many). Without
`CALLREC_LIVEKIT_API_KEY` / `CALLREC_LIVEKIT_API_SECRET` the route answers 404.

Each event is handled once per API process: LiveKit's event `id`s are remembered (a bounded set), so a
replayed or resent event is answered 200 and ignored. An event that could not be handed on because Temporal
was unreachable is answered 503 and forgotten, so that LiveKit's resend is handled.

- `egress_started` → `recorder_started` to the recording whose egress it is (found by the egress id the start
  activity stored, or, when LiveKit is faster than that, by the file path the recording asked for);
- `egress_ended`: complete (or limit reached) → the file LiveKit uploaded into `staging/{id}/livekit.{ext}`
  goes to the workflow with the `store_file` update, as an upload would, then `recorder_stopped`; failed or
  aborted → `recorder_failed` with LiveKit's error;
- `egress_updated` → logged only;
- `participant_joined` / `participant_left` → the room's call in the catalog (LiveKit's room name is our room
  id; LiveKit's own egress participants are not call participants), and the room's `autoStart`, as
  `PUT /api/v1/rooms/{id}/call` does;
- `room_finished` → the call ends as `DELETE /api/v1/rooms/{id}/call` ends it: the recording in progress stops
  and is stored.

Events for rooms or egresses callrec does not know are answered 200 and ignored.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Any

from livekit.api import TokenVerifier, WebhookReceiver
from livekit.protocol.egress import EgressInfo, EgressStatus, FileInfo
from livekit.protocol.models import ParticipantInfo
from livekit.protocol.webhook import WebhookEvent
from quart import Blueprint, Response, current_app, jsonify, request

from callrec.api import schemas
from callrec.api.operations import Answer, Who, declare, error
from callrec.api.services import services
from callrec.domain import livekit
from callrec.domain.recording import (
    FileStored,
    RecorderFailed,
    RecordingKind,
)
from callrec.recordings.errors import NotExpectingFile, RecordingNotFound, RoomNotFound, ServiceUnavailable
from callrec.recordings.service import Callback
from callrec.storage.rows import RecordingRow

log = logging.getLogger(__name__)
blueprint = Blueprint("livekit_webhook", __name__)

MAX_REMEMBERED_EVENTS = 10_000
_STATE_KEY = "callrec.livekit_webhook"
STORED = (EgressStatus.EGRESS_COMPLETE, EgressStatus.EGRESS_LIMIT_REACHED)
LOST = (EgressStatus.EGRESS_FAILED, EgressStatus.EGRESS_ABORTED)


class SeenEvents:
    """The ids of the events handled lately, oldest forgotten first."""

    def __init__(self, capacity: int = MAX_REMEMBERED_EVENTS) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def claim(self, event_id: str) -> bool:
        """True the first time an id is seen (and remembers it), False for a replay."""
        if event_id in self._ids:
            return False
        self._ids[event_id] = None
        while len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        return True

    def release(self, event_id: str) -> None:
        """Forgets an id whose event was not handled, so that a resend is."""
        self._ids.pop(event_id, None)


class _State:
    def __init__(self) -> None:
        self.seen = SeenEvents()
        self.presence = asyncio.Lock()  # joins and leaves of this process update a call one at a time


def _state() -> _State:
    state: _State = current_app.extensions.setdefault(_STATE_KEY, _State())
    return state


def _answer(body: dict[str, Any], status: int = 200) -> tuple[Response, int]:
    return jsonify(body), status


@blueprint.post("/livekit/webhook")
@declare(
    "livekitWebhook",
    "LiveKit's webhook",
    tag="Recorder",
    security=Who.NONE,
    responses={
        200: Answer("Handled, or ignored with the reason", schemas.WebhookResult),
        401: error("Bad signature"),
        404: error("LiveKit webhooks are not configured"),
        429: error("Too many bad signatures from this address"),
        503: error("Temporal is not available; LiveKit sends the event again"),
    },
    notes="Signed by LiveKit (`Authorization`: a JWT over the body's SHA-256, with the LiveKit API key and secret).",
)
async def receive() -> tuple[Response, int] | tuple[Response, int, dict[str, str]]:
    svc = services()
    settings = svc.settings
    if not (settings.livekit_api_key and settings.livekit_api_secret):
        return _answer({"error": "Not Found", "message": "LiveKit webhooks are not configured"}, 404)
    address = request.remote_addr or "unknown"
    if (wait_s := svc.throttle.retry_after(address)) is not None:
        body, status = _answer({"error": "Too Many Requests", "message": "Too many invalid webhooks"}, 429)
        return body, status, {"Retry-After": str(wait_s)}
    raw: bytes = await request.body
    token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    receiver = WebhookReceiver(TokenVerifier(settings.livekit_api_key, settings.livekit_api_secret))
    try:
        event = receiver.receive(raw.decode("utf-8"), token)
    except Exception:  # noqa: BLE001 - livekit-api raises bare Exception (hash mismatch), jwt and parse errors
        svc.throttle.failed(address)
        return _answer({"error": "Authentication Error", "message": "Invalid webhook signature"}, 401)

    seen = _state().seen
    if event.id and not seen.claim(event.id):
        return _answer({"ignored": "replayed event"})
    try:
        outcome = await handle(event)
    except ServiceUnavailable as exc:  # answered 503 for LiveKit to send the event again
        if event.id:
            seen.release(event.id)
        body, status = _answer({"error": "Service Unavailable", "message": str(exc)}, 503)
        return body, status, {"Retry-After": str(exc.retry_after_s)}
    except BaseException:
        if event.id:
            seen.release(event.id)
        raise
    return _answer({"handled": event.event} if outcome is None else {"ignored": outcome})


async def handle(event: WebhookEvent) -> str | None:
    """Acts on one verified event; returns why it was ignored, or None."""
    kind = event.event
    if kind == "egress_started":
        return await _egress_started(event.egress_info)
    if kind == "egress_ended":
        return await _egress_ended(event.egress_info)
    if kind == "egress_updated":
        info = event.egress_info
        log.info("LiveKit egress %s is %s", info.egress_id, EgressStatus.Name(info.status))
        return None
    if kind in ("participant_joined", "participant_left"):
        return await _presence(event.room.name, event.participant, joined=kind == "participant_joined")
    if kind == "room_finished":
        return await _room_finished(event.room.name)
    return f"event {kind!r} is not used"


# ------------------------------------------------------------------ egress


async def recording_of(info: EgressInfo) -> RecordingRow | None:
    """The recording an egress records: by its id, or (before the start activity stored the id) by its file path."""
    catalog = services().catalog
    if info.egress_id and (row := await catalog.recording_by_egress(info.egress_id)) is not None:
        return row
    for output in info.room_composite.file_outputs:
        parsed = livekit.parse_staging_key(output.filepath)
        if parsed is None:
            continue
        try:
            row = await services().recordings.for_callback(info.room_name, parsed[0])
        except RecordingNotFound:
            continue
        if row.egress_id in (None, info.egress_id):
            return row
    return None


def _file_result(info: EgressInfo) -> FileInfo | None:
    if info.file_results:
        return info.file_results[0]
    return info.file if info.HasField("file") else None


def stored_file(row: RecordingRow, file: FileInfo) -> FileStored:
    """What LiveKit uploaded, as the workflow takes an upload: at the staging key the recording asked for."""
    kind = RecordingKind(row.kind)
    key = livekit.staging_key(row.recording_id, kind)
    parsed = livekit.parse_staging_key(file.filename)
    if parsed is not None and parsed[0] == row.recording_id:
        key = file.filename
    extension = key.rsplit(".", 1)[1]
    return FileStored(staging_key=key, size=file.size, sha256="", extension=extension)


async def _signal(row: RecordingRow, callback: Callback, arg: object = None) -> str | None:
    try:
        await services().recordings.recorder_callback(row, callback, arg)
    except RecordingNotFound:
        return f"recording {row.recording_id} is over"
    return None


async def _egress_started(info: EgressInfo) -> str | None:
    row = await recording_of(info)
    if row is None:
        return f"unknown egress {info.egress_id!r}"
    return await _signal(row, "started")


async def _egress_ended(info: EgressInfo) -> str | None:
    row = await recording_of(info)
    if row is None:
        return f"unknown egress {info.egress_id!r}"
    status_name = EgressStatus.Name(info.status)
    if info.status in LOST:
        reason = f"LiveKit egress {info.egress_id} ended {status_name}: {info.error or 'no reason given'}"
        return await _signal(row, "failed", RecorderFailed(reason=reason))
    if info.status not in STORED:
        return f"egress ended as {status_name}"
    file = _file_result(info)
    if file is None:
        reason = f"LiveKit egress {info.egress_id} ended {status_name} without a file"
        return await _signal(row, "failed", RecorderFailed(reason=reason))
    stored = stored_file(row, file)
    try:
        kept = await services().recordings.store_file(row.recording_id, stored)
    except NotExpectingFile as exc:
        log.warning("recording %s did not take LiveKit's file: %s", row.recording_id, exc)
        return f"recording {row.recording_id} does not expect a file"
    except RecordingNotFound:
        return f"recording {row.recording_id} is over"
    if kept.staging_key != stored.staging_key:
        log.warning("recording %s already has the file %s", row.recording_id, kept.staging_key)
    return await _signal(row, "stopped")


# ------------------------------------------------------------------ call presence


async def _presence(room_id: str, participant: ParticipantInfo, *, joined: bool) -> str | None:
    if participant.kind == ParticipantInfo.Kind.EGRESS:
        return "egress participants are not in the call"
    if not participant.identity:
        return "participant without identity"
    catalog = services().catalog
    async with _state().presence:
        room = await catalog.get_room(room_id)
        if room is None:
            return f"unknown room {room_id!r}"
        if room.status == "closed":
            return f"room {room_id!r} is closed"
        previous = await catalog.get_call(room_id)
        if previous is None and not joined:
            return f"room {room_id!r} has no call"
        current = list(previous.participants) if previous else []
        if joined:
            participants = livekit.joined(current, participant.identity, participant.name)
        else:
            participants = livekit.left(current, participant.identity)
        try:
            before, call = await services().calls.replace(room, participants)
        except RoomNotFound:
            return f"unknown room {room_id!r}"
    await services().calls.changed(room, before, call)  # outside the lock: it may start a recording
    return None


async def _room_finished(room_id: str) -> str | None:
    room = await services().catalog.get_room(room_id)
    if room is None:
        return f"unknown room {room_id!r}"
    await services().calls.end(room)
    return None
