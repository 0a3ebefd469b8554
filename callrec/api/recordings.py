"""Meet-style recordings: start, stop, get, list."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from quart import Blueprint, Response, jsonify, request
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from callrec.api import cursor, errors
from callrec.api.access import authorized_recording, get_recording_or_404, permitted_recording
from callrec.api.auth import APPS_AND_MEMBERS, require
from callrec.api.body import json_body
from callrec.api.fields import project, requested_fields
from callrec.api.rooms import get_room_or_404
from callrec.api.services import services
from callrec.api.starting import begin_recording
from callrec.api.views import recording_view
from callrec.domain.layout import RecordingConfig, RecordingOverride, effective_config
from callrec.domain.recording import (
    RecordingKind,
    RecordingStatus,
    StopRequest,
)
from callrec.domain.tokens import Permission
from callrec.storage.catalog import RecordingInProgress
from callrec.storage.listing import After, MatchMode, RecordingFilter, SortField, SortOrder, sort_value
from callrec.storage.listing import list_recordings as list_recording_rows
from callrec.workflows.recording import RecordingWorkflow

blueprint = Blueprint("recordings", __name__)


class StartRecording(BaseModel):
    model_config = ConfigDict(extra="forbid")
    roomId: str = Field(min_length=1, max_length=128)
    config: RecordingOverride | None = None


class ListQuery(BaseModel):
    """`GET /recordings` query parameters; unknown ones are ignored, `maxItems` above 100 counts as 100."""

    model_config = ConfigDict(extra="ignore")
    roomId: str | None = Field(default=None, min_length=1, max_length=128)
    roomName: str | None = Field(default=None, min_length=1, max_length=256)
    roomNameMatchMode: MatchMode = MatchMode.EXACT
    roomNameCaseInsensitive: bool = False
    status: RecordingStatus | None = None
    maxItems: int = Field(default=10, ge=1)
    nextPageToken: str | None = None
    sortField: SortField = SortField.START_DATE
    sortOrder: SortOrder = SortOrder.DESC
    fields: str | None = None


@blueprint.post("/recordings")
async def start_recording() -> tuple[Response, int, dict[str, str]]:
    """Starts a recording and answers once the recorder reported `started` (201) or gave up (503)."""
    svc = services()
    require(Permission.CONTROL, kinds=APPS_AND_MEMBERS)
    body = await json_body(StartRecording)
    who = require(Permission.CONTROL, kinds=APPS_AND_MEMBERS, room_id=body.roomId)
    room = await get_room_or_404(body.roomId)
    config = effective_config(RecordingConfig.model_validate(room.config), body.config)
    if not config.enabled:
        raise errors.recording_disabled(room.room_id)
    call = await svc.catalog.get_call(room.room_id)
    if call is None or not call.participants:
        raise errors.room_has_no_call(room.room_id)

    try:
        handle = await begin_recording(room, config, RecordingKind.VIDEO, call, who.subject)
    except RecordingInProgress as exc:
        raise errors.recording_already_started(room.room_id) from exc
    recording_id = handle.id
    settings = svc.settings

    try:
        state = await asyncio.wait_for(
            handle.execute_update(RecordingWorkflow.wait_until_started), settings.start_timeout_s + 15
        )
    except (TimeoutError, RPCError, WorkflowUpdateFailedError) as exc:
        # The workflow keeps its own start timeout: it ends `failed` and stops egress by itself.
        raise errors.recording_start_failed(room.room_id, "no worker answered in time") from exc
    if state.status != RecordingStatus.ACTIVE:
        raise errors.recording_start_failed(room.room_id, state.details or state.status.value)
    started = await get_recording_or_404(recording_id)
    return (
        jsonify(project(recording_view(started), requested_fields())),
        201,
        {"Location": f"/api/v1/recordings/{recording_id}"},
    )


@blueprint.get("/recordings")
async def list_recordings() -> Response:
    """Keyset-paged; `nextPageToken` continues the same listing (same filters, sortField and sortOrder).

    A member token sees its own room's recordings only, whatever `roomId` says.
    """
    who = require(Permission.LIST)
    try:
        query = ListQuery.model_validate(request.args.to_dict())
    except ValidationError as exc:
        raise errors.validation_failed(exc) from exc
    svc = services()
    limit = min(query.maxItems, 100)
    filters = RecordingFilter(
        room_id=who.room_id or query.roomId,
        status=query.status.value if query.status is not None else None,
        room_name=query.roomName,
        room_name_match=query.roomNameMatchMode,
        room_name_case_insensitive=query.roomNameCaseInsensitive,
    )
    key = cursor.derive_key(svc.settings.token_key)
    after = None
    if query.nextPageToken:  # an empty one is no token: the first page
        try:
            after = cursor.decode(key, query.nextPageToken, query.sortField, query.sortOrder, filters.canonical())
        except cursor.InvalidCursor as exc:
            raise errors.invalid_parameter("nextPageToken", str(exc)) from exc
    rows, more = await list_recording_rows(svc.catalog, filters, query.sortField, query.sortOrder, limit, after)
    next_token = None
    if more:
        last = rows[-1]
        after_last = After(sort_value(last, query.sortField), last.recording_id)
        next_token = cursor.encode(key, query.sortField, query.sortOrder, filters.canonical(), after_last)
    fields = requested_fields()
    return jsonify(
        {
            "recordings": [project(recording_view(row), fields) for row in rows],
            "pagination": {"isTruncated": more, "nextPageToken": next_token, "maxItems": limit},
        }
    )


@blueprint.get("/recordings/<recording_id>")
async def get_recording(recording_id: str) -> Response:
    return jsonify(
        project(recording_view(await authorized_recording(recording_id, Permission.LIST)), requested_fields())
    )


@blueprint.post("/recordings/<recording_id>/stop")
async def stop_recording(recording_id: str) -> tuple[Response, int]:
    svc = services()
    row = await permitted_recording(recording_id, Permission.CONTROL, APPS_AND_MEMBERS)
    who = require()
    if row.status != RecordingStatus.ACTIVE.value:
        raise errors.recording_not_active(recording_id, row.status)
    handle = svc.temporal.get_workflow_handle_for(RecordingWorkflow.run, recording_id)
    try:
        await handle.execute_update(RecordingWorkflow.stop, StopRequest(reason="requested", actor=who.subject))
    except (WorkflowUpdateFailedError, RPCError) as exc:
        current = await get_recording_or_404(recording_id)
        raise errors.recording_not_active(recording_id, current.status) from exc
    return jsonify(project(recording_view(await get_recording_or_404(recording_id)), requested_fields())), 202
