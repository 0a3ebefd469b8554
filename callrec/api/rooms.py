"""Rooms, their recording config, and call presence fed by the conferencing side."""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, Response, jsonify
from temporalio.service import RPCError

from callrec.api.body import json_body
from callrec.api.errors import ApiError, room_not_found
from callrec.api.ids import new_room_id
from callrec.api.services import services
from callrec.api.views import call_view, room_view
from callrec.domain.layout import Encoding, Layout, RecordingConfig
from callrec.domain.participants import Participant
from callrec.domain.recording import StopRequest
from callrec.storage.catalog import RoomNotFound, RoomRow
from callrec.workflows.recording import RecordingWorkflow

blueprint = Blueprint("rooms", __name__)


class RoomConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    recording: RecordingConfig = RecordingConfig()


class CreateRoom(BaseModel):
    model_config = ConfigDict(extra="forbid")
    roomName: str = Field(default="Room", min_length=1, max_length=128)
    config: RoomConfig = RoomConfig()


class RecordingConfigPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool | None = None
    layout: Layout | None = None
    encoding: Encoding | None = None


class RoomConfigPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    recording: RecordingConfigPatch


class UpdateRoomConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    config: RoomConfigPatch


class PutCall(BaseModel):
    model_config = ConfigDict(extra="forbid")
    participants: list[Participant] = Field(max_length=256)


def now_ms() -> int:
    return int(time.time() * 1000)


def _config_json(config: RecordingConfig) -> dict[str, Any]:
    return config.model_dump(mode="json", by_alias=True)


async def get_room_or_404(room_id: str) -> RoomRow:
    room = await services().catalog.get_room(room_id)
    if room is None:
        raise room_not_found(room_id)
    return room


@blueprint.post("/rooms")
async def create_room() -> tuple[Response, int, dict[str, str]]:
    body = await json_body(CreateRoom)
    room = RoomRow(
        room_id=new_room_id(body.roomName),
        room_name=body.roomName,
        config=_config_json(body.config.recording),
        creation_date=now_ms(),
    )
    await services().catalog.add_room(room)
    return jsonify(room_view(room)), 201, {"Location": f"/api/v1/rooms/{room.room_id}"}


@blueprint.get("/rooms/<room_id>")
async def get_room(room_id: str) -> Response:
    return jsonify(room_view(await get_room_or_404(room_id)))


@blueprint.get("/rooms/<room_id>/config")
async def get_room_config(room_id: str) -> Response:
    return jsonify({"recording": (await get_room_or_404(room_id)).config})


@blueprint.put("/rooms/<room_id>/config")
async def put_room_config(room_id: str) -> Response:
    body = await json_body(UpdateRoomConfig)
    room = await get_room_or_404(room_id)
    current = RecordingConfig.model_validate(room.config)
    updated = current.model_copy(update=body.config.recording.model_dump(exclude_unset=True))
    updated = RecordingConfig.model_validate(updated.model_dump())
    try:
        room = await services().catalog.set_room_config(room_id, _config_json(updated))
    except RoomNotFound as exc:
        raise room_not_found(room_id) from exc
    return jsonify({"recording": room.config})


@blueprint.get("/rooms/<room_id>/call")
async def get_call(room_id: str) -> Response:
    await get_room_or_404(room_id)
    call = await services().catalog.get_call(room_id)
    if call is None:
        raise ApiError(404, "Call Error", f"Room '{room_id}' has no active call")
    return jsonify(call_view(call))


@blueprint.put("/rooms/<room_id>/call")
async def put_call(room_id: str) -> Response:
    body = await json_body(PutCall)
    participants = [p.model_dump(mode="json") for p in body.participants]
    try:
        call = await services().catalog.put_call(room_id, participants, now_ms())
    except RoomNotFound as exc:
        raise room_not_found(room_id) from exc
    return jsonify(call_view(call))


@blueprint.delete("/rooms/<room_id>/call")
async def end_call(room_id: str) -> tuple[str, int]:
    """Ends the call; a recording in progress stops and is stored."""
    svc = services()
    await get_room_or_404(room_id)
    if not await svc.catalog.end_call(room_id):
        raise ApiError(404, "Call Error", f"Room '{room_id}' has no active call")
    recording = await svc.catalog.recording_in_progress(room_id)
    if recording is not None:
        handle = svc.temporal.get_workflow_handle_for(RecordingWorkflow.run, recording.recording_id)
        try:
            await handle.signal(RecordingWorkflow.end, StopRequest(reason="call_ended"))
        except RPCError:
            pass  # the workflow already closed: nothing left to stop
    return "", 204
