"""Talk-style recording control: `POST` / `DELETE /recording/{token}` (token = room id), in OCS envelopes.

Errors as Talk gives them: 400 with `{"error": "status" | "config" | "recording" | "call"}`, 401 without
a credential, 403 without recording control of the room, 404 for an unknown room. Unlike the Meet-style
start, the answer does not wait for the recorder: the room's `callRecording` goes 3/4 (starting) and then
1/2 once the recorder reports `started`.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, g, request
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from callrec.api.auth import APPS_AND_MEMBERS, authenticate, require
from callrec.api.errors import ApiError
from callrec.api.ocs import OCS_BASE, ocs_response
from callrec.api.services import services
from callrec.api.starting import begin_recording
from callrec.domain.layout import RecordingConfig
from callrec.domain.recording import RecordingKind, RecordingStatus, StopRequest
from callrec.domain.tokens import Permission
from callrec.storage.catalog import RecordingInProgress, RoomRow
from callrec.workflows.recording import RecordingWorkflow

blueprint = Blueprint("talk", __name__, url_prefix=OCS_BASE)

# Talk's call recording status of a room.
NONE, VIDEO, AUDIO, STARTING_VIDEO, STARTING_AUDIO, FAILED = range(6)
KINDS = {VIDEO: RecordingKind.VIDEO, AUDIO: RecordingKind.AUDIO}


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


async def controlled_room(token: str) -> RoomRow:
    """The room, if the caller may control its recordings (API key, or a member token with control)."""
    g.principal = authenticate()
    require(Permission.CONTROL, kinds=APPS_AND_MEMBERS, room_id=token)
    room = await services().catalog.get_room(token)
    if room is None:
        raise TalkError("room", 404)
    return room


async def requested_status() -> object:
    if request.mimetype == "application/json":
        body: Any = await request.get_json(silent=True)
        return body.get("status") if isinstance(body, dict) else None
    return (await request.form).get("status")


@blueprint.post("/recording/<token>")
async def start(token: str) -> Response:
    room = await controlled_room(token)
    raw = await requested_status()
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
        await begin_recording(room, config, KINDS[status], call)
    except RecordingInProgress as exc:
        raise TalkError("recording") from exc
    return ocs_response([])


@blueprint.delete("/recording/<token>")
async def stop(token: str) -> Response:
    room = await controlled_room(token)
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
            await handle.execute_update(RecordingWorkflow.stop, StopRequest(reason="requested"))
        else:
            await handle.signal(RecordingWorkflow.end, StopRequest(reason="requested"))
    except (WorkflowUpdateFailedError, RPCError):
        pass  # it ended meanwhile: nothing left to stop
    return ocs_response([])


async def call_recording_status(room_id: str) -> int:
    """Talk's 0-5 for a room: starting or recording (video/audio), failed last time, or none."""
    catalog = services().catalog
    row = await catalog.recording_in_progress(room_id)
    if row is not None:
        audio = row.kind == RecordingKind.AUDIO.value
        if row.status == RecordingStatus.STARTING.value:
            return STARTING_AUDIO if audio else STARTING_VIDEO
        return AUDIO if audio else VIDEO
    latest = await catalog.recordings(room_id=room_id, limit=1)
    return FAILED if latest and latest[0].status == RecordingStatus.FAILED.value else NONE
