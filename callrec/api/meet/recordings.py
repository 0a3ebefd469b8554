"""Meet-style recordings: start, stop, get, list."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, Response, jsonify

from callrec.api import cursor, errors, schemas
from callrec.api.auth import APPS_AND_MEMBERS, reachable_rooms, require
from callrec.api.baseurl import api_url
from callrec.api.fields import project, requested_fields
from callrec.api.meet.access import authorized_recording, permitted_recording
from callrec.api.meet.filters import check_name_filter
from callrec.api.meet.views import recording_view
from callrec.api.operations import (
    FIELDS,
    LOCATION,
    RECORDING_SECRET,
    Answer,
    Who,
    declare,
    error,
    recording_answer,
)
from callrec.api.services import services
from callrec.api.validation import MaxItems, QueryBool, RoomId
from callrec.domain.layout import RecordingOverride
from callrec.domain.recording import Recording, RecordingStatus
from callrec.domain.recording_info import RECORDING_FIELDS, started_info, stopped_info
from callrec.domain.tokens import Permission
from callrec.storage.listing import After, RecordingFilter, SortField, SortOrder, sort_value
from callrec.storage.textmatch import MatchMode

blueprint = Blueprint("recordings", __name__)


class StartRecording(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"roomId": "weekly-sync-a1b2c3d4", "config": {"layout": "speaker"}}]},
    )
    roomId: RoomId
    config: RecordingOverride | None = None


class ListQuery(BaseModel):
    """`GET /recordings` query parameters; unknown ones are ignored, `maxItems` above 100 counts as 100."""

    model_config = ConfigDict(extra="ignore")
    roomId: RoomId | None = None
    roomName: str | None = Field(default=None, min_length=1, max_length=256)
    roomNameMatchMode: MatchMode = MatchMode.EXACT
    roomNameCaseInsensitive: QueryBool = False
    status: RecordingStatus | None = None
    maxItems: MaxItems = 10
    nextPageToken: str | None = None
    sortField: SortField = SortField.START_DATE
    sortOrder: SortOrder = SortOrder.DESC
    fields: str | None = None


@blueprint.post("/recordings")
@declare(
    "startRecording",
    "Start a recording",
    tag="Recordings",
    security=Who.APPS_AND_MEMBERS,
    responses={
        201: Answer("Started (`active`)", schemas.Recording, headers={"Location": LOCATION}),
        403: error("No `recordingControl` permission, another room's token, or recording is disabled"),
        404: error("No such room"),
        409: error("The room has no participants, or is already being recorded"),
        503: error("The recording could not start, or the workflow service is unavailable"),
    },
    body=StartRecording,
    parameters=FIELDS,
    auth=lambda: require(Permission.CONTROL, kinds=APPS_AND_MEMBERS),
)
async def start_recording(body: StartRecording) -> tuple[Response, int, dict[str, str]]:
    """Starts a recording and answers once the recorder reported `started` (201) or gave up (503)."""
    who = require(Permission.CONTROL, kinds=APPS_AND_MEMBERS, room_id=body.roomId)
    recordings = services().recordings
    room = await recordings.room(body.roomId)
    recording_id = await recordings.start(room, who.subject, override=body.config, until="started")
    started = Recording.model_validate(await recordings.get(recording_id))
    return (
        jsonify(project(started_info(started), requested_fields(), RECORDING_FIELDS)),
        201,
        {"Location": api_url(f"/recordings/{recording_id}")},
    )


@blueprint.get("/recordings")
@declare(
    "getRecordings",
    "List recordings",
    tag="Recordings",
    security=Who.EVERYONE,
    responses={200: Answer("A page of recordings", schemas.RecordingList), 403: error(), 422: error()},
    query=ListQuery,
    parameters=FIELDS[1:],
    auth=lambda: require(Permission.LIST),
)
async def list_recordings(query: ListQuery) -> Response:
    """Keyset-paged; `nextPageToken` continues the same listing (same filters, sortField and sortOrder).

    A member token sees its own room's recordings only, whatever `roomId` says.
    """
    who = require(Permission.LIST)
    svc = services()
    limit = min(query.maxItems, 100)
    filters = RecordingFilter(
        room_id=who.room_id or query.roomId,
        status=query.status.value if query.status is not None else None,
        room_name=query.roomName,
        room_name_match=query.roomNameMatchMode,
        room_name_case_insensitive=query.roomNameCaseInsensitive,
        room_id_or_name=who.room_id is None,  # Meet: roomId OR roomName; a member stays in its room
        room_ids=reachable_rooms(who, Permission.LIST),  # a user-role token: its rooms only
    )
    check_name_filter(query.roomName, query.roomNameMatchMode)
    key = cursor.derive_key(svc.settings.token_key)
    after = None
    if query.nextPageToken:  # an empty one is no token: the first page
        try:
            after = cursor.decode(key, query.nextPageToken, query.sortField, query.sortOrder, filters.canonical())
        except cursor.InvalidCursor as exc:
            raise errors.invalid_parameter("nextPageToken", str(exc)) from exc
    rows, more = await svc.recordings.list(filters, query.sortField, query.sortOrder, limit, after)
    next_token = None
    if more:
        last = rows[-1]
        after_last = After(sort_value(last, query.sortField), last.recording_id)
        next_token = cursor.encode(key, query.sortField, query.sortOrder, filters.canonical(), after_last)
    fields = requested_fields()
    return jsonify(
        {
            "recordings": [project(recording_view(row), fields, RECORDING_FIELDS) for row in rows],
            "pagination": {"isTruncated": more, "nextPageToken": next_token, "maxItems": limit},
        }
    )


@blueprint.get("/recordings/<recording_id>")
@declare(
    "getRecording",
    "Get a recording",
    tag="Recordings",
    security=Who.EVERYONE_OR_SECRET,
    responses={
        200: recording_answer("The recording"),
        400: error("`recordingSecret` is not one of the recording's secrets"),
        403: error(),
        404: error("No such recording"),
    },
    parameters=(RECORDING_SECRET, *FIELDS),
)
async def get_recording(recording_id: str) -> Response:
    return jsonify(
        project(
            recording_view(await authorized_recording(recording_id, Permission.LIST)),
            requested_fields(),
            RECORDING_FIELDS,
        )
    )


@blueprint.post("/recordings/<recording_id>/stop")
@declare(
    "stopRecording",
    "Stop a recording",
    tag="Recordings",
    security=Who.APPS_AND_MEMBERS,
    responses={
        202: Answer(
            "Stopping (`ending`): the recording is being stored; `duration` is the time recorded until the stop",
            schemas.Recording,
            headers={"Location": LOCATION},
        ),
        403: error(),
        404: error("No such recording"),
        409: error("The recording is already stopped, or still starting (it is stopped all the same)"),
        503: error("Temporal is unavailable, or no worker took the stop in time (the stop is queued; `Retry-After`)"),
    },
    parameters=FIELDS,
)
async def stop_recording(recording_id: str) -> tuple[Response, int, dict[str, str]]:
    await permitted_recording(recording_id, Permission.CONTROL, APPS_AND_MEMBERS)
    stopped = await services().recordings.stop(recording_id, require().subject)
    return (
        jsonify(project(stopped_info(stopped), requested_fields(), RECORDING_FIELDS)),
        202,
        {"Location": api_url(f"/recordings/{recording_id}")},
    )
