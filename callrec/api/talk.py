"""Talk-style recording control by room token (= room id), in OCS envelopes.

`POST` / `DELETE /recording/{token}` start and stop; `POST /recording/{token}/share-chat` and
`DELETE /recording/{token}/notification` take up or dismiss a stored recording's offer. Errors as Talk
gives them: 400 with `{"error": "status" | "config" | "recording" | "call" | "file" | "system"}`, 401
without a credential, 403 without recording control of the room, 404 for an unknown room, 412 while the
lobby is on for a caller who is not a moderator. Unlike the Meet-style start, the answer does not wait for
the recorder: the room's `callRecording` goes 3/4 (starting) and then 1/2 once the recorder reports `started`.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, g, request
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from callrec.api.auth import APPS_AND_MEMBERS, authenticate, require
from callrec.api.errors import ApiError
from callrec.api.ocs import OCS_BASE, ocs_response
from callrec.api.services import services
from callrec.api.starting import begin_recording
from callrec.domain.layout import RecordingConfig
from callrec.domain.notifications import FILE_STORED, Actor, DismissRequest, ShareRequest
from callrec.domain.recording import RecordingKind, RecordingStatus, StopRequest, talk_status
from callrec.domain.tokens import Permission, Principal
from callrec.storage.catalog import RecordingInProgress, RoomRow
from callrec.workflows.recording import RecordingWorkflow

blueprint = Blueprint("talk", __name__, url_prefix=OCS_BASE)

KINDS = {1: RecordingKind.VIDEO, 2: RecordingKind.AUDIO}  # Talk's `status` of a start


class TalkError(Exception):
    def __init__(self, error: str, status: int = 400) -> None:
        super().__init__(error)
        self.error = error
        self.status = status


@blueprint.errorhandler(TalkError)
async def talk_error(exc: TalkError) -> Response:
    return ocs_response({"error": exc.error}, exc.status, "Bad Request" if exc.status == 400 else "Failure")


@blueprint.errorhandler(ApiError)
async def api_error(exc: ApiError) -> Response:
    return ocs_response({"error": exc.error, "message": exc.message}, exc.status, exc.message)


async def controlled_room(token: str) -> tuple[RoomRow, Principal]:
    """The room and the caller, if it may control the room's recordings (API key, or a member with control)."""
    g.principal = authenticate()
    who = require(Permission.CONTROL, kinds=APPS_AND_MEMBERS, room_id=token)
    room = await services().catalog.get_room(token)
    if room is None:
        raise TalkError("room", 404)
    return room, who


def check_lobby(room: RoomRow, who: Principal) -> None:
    if room.lobby and who.kind == "member" and who.role != "moderator":
        raise TalkError("lobby", 412)


async def param(name: str) -> object:
    """A request parameter, from a JSON body, a form, or the query string (as Talk clients send them)."""
    if request.mimetype == "application/json":
        body: Any = await request.get_json(silent=True)
        return body.get(name) if isinstance(body, dict) else None
    return (await request.form).get(name) or request.args.get(name)


async def whole_number(name: str, error: str) -> int:
    raw = await param(name)
    if isinstance(raw, bool) or not isinstance(raw, int | str) or not str(raw).isdigit() or len(str(raw)) > 18:
        raise TalkError(error)  # 18 digits: any timestamp or file id, and it fits the database's 64 bits
    return int(raw)


@blueprint.post("/recording/<token>")
async def start(token: str) -> Response:
    room, who = await controlled_room(token)
    check_lobby(room, who)
    raw = await param("status")
    status = int(raw) if isinstance(raw, int | str) and str(raw) in ("1", "2") else None
    if status is None:
        raise TalkError("status")
    config = RecordingConfig.model_validate(room.config)
    if not config.enabled:
        raise TalkError("config")
    call = await services().catalog.get_call(room.room_id)
    if call is None or not call.participants:
        raise TalkError("call")
    try:
        await begin_recording(room, config, KINDS[status], call, who.subject)
    except RecordingInProgress as exc:
        raise TalkError("recording") from exc
    return ocs_response([])


@blueprint.delete("/recording/<token>")
async def stop(token: str) -> Response:
    room, who = await controlled_room(token)
    check_lobby(room, who)
    if not RecordingConfig.model_validate(room.config).enabled:
        raise TalkError("config")
    catalog = services().catalog
    if await catalog.get_call(room.room_id) is None:
        raise TalkError("call")
    row = await catalog.recording_in_progress(room.room_id)
    if row is None:
        return ocs_response([])
    handle = services().temporal.get_workflow_handle_for(RecordingWorkflow.run, row.recording_id)
    try:
        if row.status == RecordingStatus.ACTIVE.value:
            await handle.execute_update(RecordingWorkflow.stop, StopRequest(reason="requested", actor=who.subject))
        else:
            await handle.signal(RecordingWorkflow.end, StopRequest(reason="requested", actor=who.subject))
    except (WorkflowUpdateFailedError, RPCError):
        pass  # it ended meanwhile: nothing left to stop
    return ocs_response([])


@blueprint.post("/recording/<token>/share-chat")
async def share_chat(token: str) -> Response:
    """Posts a stored recording to the room's chat, once: repeating the request changes nothing."""
    room, who = await controlled_room(token)
    timestamp = await whole_number("timestamp", "file")
    file_id = await whole_number("fileId", "file")
    catalog = services().catalog
    offers = [
        row
        for row in await catalog.room_notifications_at(room.room_id, timestamp)
        if row.subject == FILE_STORED and row.file_id == file_id and row.recording_id is not None
    ]
    if not offers:
        raise TalkError("file")
    offer = offers[0]
    assert offer.recording_id is not None
    handle = services().temporal.get_workflow_handle_for(RecordingWorkflow.run, offer.recording_id)
    share = ShareRequest(actor=Actor(id=who.subject), timestamp=timestamp, file_id=file_id)
    try:
        await handle.execute_update(RecordingWorkflow.share_to_chat, share)
    except (WorkflowUpdateFailedError, RPCError) as exc:  # refused, or the workflow ended with the offer
        cause = exc.cause if isinstance(exc, WorkflowUpdateFailedError) else None
        if isinstance(cause, ApplicationError) and cause.type == "ShareFailed":
            raise TalkError("system") from exc
        if not await _already_shared(offer.notification_id, timestamp, room.room_id):
            raise TalkError("file") from exc
    return ocs_response([])


async def _already_shared(notification_id: int, timestamp: int, room_id: str) -> bool:
    rows = await services().catalog.room_notifications_at(room_id, timestamp)
    return any(row.notification_id == notification_id and row.state == "shared" for row in rows)


@blueprint.delete("/recording/<token>/notification")
async def dismiss_notification(token: str) -> Response:
    """Dismisses the room's notifications of that timestamp (a stored recording's closes its share offer)."""
    room, _ = await controlled_room(token)
    timestamp = await whole_number("timestamp", "timestamp")
    catalog = services().catalog
    for row in await catalog.room_notifications_at(room.room_id, timestamp):
        if row.state != "open":
            continue
        if row.subject == FILE_STORED and row.recording_id is not None:
            handle = services().temporal.get_workflow_handle_for(RecordingWorkflow.run, row.recording_id)
            try:
                await handle.execute_update(RecordingWorkflow.dismiss, DismissRequest(timestamp=timestamp))
                continue
            except (WorkflowUpdateFailedError, RPCError):
                pass  # the workflow no longer holds the offer: close the notification here
        await catalog.close_notifications("dismissed", notification_id=row.notification_id)
    return ocs_response([])


async def call_recording_status(room_id: str) -> int:
    """Talk's 0-5 for a room, from its recording in progress, else its latest one."""
    catalog = services().catalog
    row = await catalog.recording_in_progress(room_id)
    if row is None:
        latest = await catalog.recordings(room_id=room_id, limit=1)
        row = latest[0] if latest else None
    return 0 if row is None else talk_status(RecordingStatus(row.status), RecordingKind(row.kind))
