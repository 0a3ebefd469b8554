"""Response bodies of the API as pydantic models: what `views` and the routes return, for the OpenAPI document.

The routes build their JSON by hand (`views`); these models describe it. They forbid extra keys, so a
field a route starts returning without being described here fails the schema conformance test.
Request bodies are not here: the document uses the very models the routes validate with.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from callrec.domain.layout import Encoding, Layout, RecordingConfig
from callrec.domain.participants import Participant
from callrec.domain.recording import RecordingStatus
from callrec.domain.tokens import Permission


def _never_null(schema: JsonDict) -> None:
    """`T | None = None` in the schema as "may be absent, never null": drops the null branch and default."""
    schema.pop("default", None)
    branches = schema.pop("anyOf", None)
    if not isinstance(branches, list):
        return
    kept = [branch for branch in branches if branch != {"type": "null"}]
    if len(kept) == 1 and isinstance(kept[0], dict):
        schema.update(kept[0])
    else:
        schema["anyOf"] = kept


def omittable(description: str | None = None) -> Any:
    """A field whose key may be missing from the JSON, but which is never `null` when present."""
    return Field(default=None, description=description, json_schema_extra=_never_null)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(_Body):
    field: str = Field(description="the field (dotted path) or identifier the message is about")
    message: str


class Error(_Body):
    """Every error answer: `{error, message, details?}`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"error": "Recording Error", "message": "Room 'weekly-sync-a1b2c3d4' is already being recorded"},
                {
                    "error": "Unprocessable Entity",
                    "message": "Invalid request",
                    "details": [{"field": "roomId", "message": "Field required"}],
                },
            ]
        },
    )

    error: str = Field(description="error family, e.g. `Room Error`, `Authentication Error`, `Unprocessable Entity`")
    message: str
    details: list[ErrorDetail] | None = omittable("per-field reasons (validation errors)")
    code: str | None = omittable("a machine-readable reason where one helps, e.g. `no_recorder_capacity`")


class Message(_Body):
    message: str


# ------------------------------------------------------------------------- recordings


class RecordingGap(_Body):
    offset: float = Field(description="seconds into the stored file")
    duration: float = Field(description="seconds of the call missing there")


class Recorder(_Body):
    id: str
    url: str = Field(description="where the API reaches it (WHIP)")
    taskQueue: str = Field(description="its own Temporal task queue")
    state: Literal["active", "draining", "offline"]
    capacity: float = Field(description="its budget, in 720p30 recordings")
    load: float = Field(description="the cost of the recordings it holds")
    recordings: int = Field(description="recordings it holds a slot for")
    publishingRooms: int = Field(description="rooms whose WebRTC publishers it holds")
    lastSeen: int = Field(description="ms since the epoch of its last registration")


class Recorders(_Body):
    recorders: list[Recorder]


class Recording(_Body):
    """A recording (Meet's `MeetRecordingInfo`): `recordingId`, `roomId`, `roomName` and `status` always; any other
    field only when it has a value (never `null`); with `fields` (or `X-Fields`) only the selected ones."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "recordingId": "weekly-sync-a1b2c3d4--EG_x7Kq2mZpR4aB--Tz9Qw",
                    "roomId": "weekly-sync-a1b2c3d4",
                    "roomName": "Weekly sync",
                    "status": "complete",
                    "layout": "speaker",
                    "encoding": "H264_720P_30",
                    "filename": "weekly-sync-a1b2c3d4--EG_x7Kq2mZpR4aB--Tz9Qw.mp4",
                    "startDate": 1796500000000,
                    "endDate": 1796500312000,
                    "duration": 311.8,
                    "size": 48213112,
                }
            ]
        },
    )

    recordingId: str | None = omittable()
    roomId: str | None = omittable()
    roomName: str | None = omittable()
    status: RecordingStatus | None = omittable()
    layout: Layout | None = omittable()
    encoding: Encoding | None = omittable("the preset name, or the advanced encoding options")
    filename: str | None = omittable()
    startDate: int | None = omittable("ms since the epoch; absent until it started")
    endDate: int | None = omittable("ms since the epoch; absent until it was stopped or ended")
    duration: float | None = omittable(
        "seconds; absent until known (while a built-in recorder records: what it stored so far; on a stop's answer: "
        "the time recorded until the stop)"
    )
    size: int | None = omittable("bytes; absent until known (while a built-in recorder records: stored so far)")
    errorCode: int | None = omittable("present when the recording failed or was aborted")
    error: str | None = omittable("the error's name, lowercase; present when the recording failed or was aborted")
    details: str | None = omittable("what happened, for people")
    gaps: list[RecordingGap] | None = omittable(
        "callrec's own, only when a recorder was lost mid-recording and another one went on: where the stored "
        "file skips, and how much wall-clock time is missing there"
    )


class Pagination(_Body):
    isTruncated: bool = Field(description="whether more items follow")
    nextPageToken: str | None = Field(description="pass it back to get the next page; null on the last page")
    maxItems: int = Field(description="the page size in effect (requests above 100 count as 100)")


class RecordingList(_Body):
    recordings: list[Recording]
    pagination: Pagination


class RecordingFailure(_Body):
    recordingId: str
    error: str = Field(description="why it was not deleted")


class BulkDeleteResult(_Body):
    message: str
    deleted: list[str]
    failed: list[RecordingFailure]


class RecordingUrl(_Body):
    url: str = Field(description="plays the recording; carries its public or private secret")


# ------------------------------------------------------------------------- rooms


class RoomConfig(_Body):
    recording: RecordingConfig


class Lobby(_Body):
    enabled: bool = Field(description="only moderators may start or stop recordings while it is on")


class Room(_Body):
    roomId: str
    roomName: str
    creationDate: int = Field(description="ms since the epoch")
    status: Literal["open", "closed"]
    lobby: Lobby
    config: RoomConfig
    moderatorSecret: str | None = omittable("shown to admins only: exchanged for a moderator member token")
    speakerSecret: str | None = omittable("shown to admins only: exchanged for a speaker member token")
    callRecording: Literal[0, 1, 2, 3, 4, 5] | None = omittable(
        "on GET /rooms/{roomId}: Talk's recording status (0 none, 1 video, 2 audio, 3/4 starting, 5 failed)"
    )
    recordingConsent: Literal[0, 1] | None = omittable(
        "on GET /rooms/{roomId}: Talk's recording consent (1: joining the call needs `recordingConsent`)"
    )


class RoomList(_Body):
    rooms: list[Room]
    pagination: Pagination


class RoomDeleted(_Body):
    successCode: Literal[
        "room_deleted",
        "room_with_active_meeting_deleted",
        "room_and_recordings_deleted",
        "room_with_active_meeting_and_recordings_deleted",
    ] = Field(description="OpenVidu Meet's MeetRoomDeletionSuccessCode")
    message: str
    deletedRecordings: list[str] = Field(description="the recordings deleted with the room")


class RoomClosed(_Body):
    successCode: Literal["room_closed", "room_with_active_meeting_closed"] = Field(
        description="OpenVidu Meet's MeetRoomDeletionSuccessCode"
    )
    message: str
    room: Room = Field(description="the room, now closed")
    recordings: int = Field(description="how many recordings the closed room keeps")


class Call(_Body):
    roomId: str
    participants: list[Participant]
    startedDate: int = Field(description="ms since the epoch")
    updatedDate: int = Field(description="ms since the epoch")


# ------------------------------------------------------------------------- notifications and chat


class NotificationAction(_Body):
    label: str
    link: str = Field(description="the Talk-style endpoint that takes the action")
    type: Literal["POST", "DELETE"]
    primary: bool
    body: dict[str, int] = Field(description="what to send to `link`")


class Notification(_Body):
    """Shaped like a Nextcloud notification; Talk clients name it by `timestamp`."""

    notificationId: int
    app: Literal["spreed"]
    user: str | None = Field(description="who it is for (the recording's owner); null: the room's moderators")
    moderators: bool = Field(description="whether the room's moderators see it too")
    timestamp: int = Field(description="seconds since the epoch, UTC")
    datetime: str = Field(description="the same moment, ISO 8601")
    objectType: Literal["recording", "recording_information"] = Field(
        description="Talk's: `recording` (a stored file), `recording_information` (a failure)"
    )
    objectId: str = Field(description="the room's id (Talk's room token)")
    roomId: str
    recordingId: str | None
    subject: Literal["record_file_stored", "record_file_store_fail", "recording_failed"]
    message: str = Field(description="the text as Talk renders it")
    subjectRich: str = Field(description='Talk\'s subject, e.g. "Call recording now available"')
    messageRich: str = Field(description="Talk's message, with {call} and {file} standing for messageRichParameters")
    messageRichParameters: dict[str, dict[str, Any]]
    fileId: int | None = Field(description="a stored recording's file id, for share-chat")
    actions: list[NotificationAction]


class NotificationList(_Body):
    notifications: list[Notification]


class ChatActor(_Body):
    type: str
    id: str
    name: str


class ChatMessage(_Body):
    """Shaped like a Talk chat message."""

    id: int
    token: str = Field(description="the room's id")
    actorType: str
    actorId: str
    actorDisplayName: str
    timestamp: int = Field(description="seconds since the epoch, UTC")
    messageType: Literal["system", "record-video", "record-audio"]
    systemMessage: str = Field(description="recording_started, audio_recording_stopped, file_shared, ...")
    message: str = Field(description="the text, with {actor} and {file} standing for messageParameters")
    messageParameters: dict[str, dict[str, Any]]


class ChatLog(_Body):
    messages: list[ChatMessage]


# ------------------------------------------------------------------------- tokens


class MemberToken(_Body):
    token: str = Field(description="send it as `X-Room-Member-Token`")
    role: Literal["moderator", "speaker"]
    permissions: list[Permission]
    memberId: str = Field(
        description="the token's subject (`member:...`), minted with it: who its notifications and recordings are for"
    )


class RoomMember(_Body):
    """A registered room member (OpenVidu Meet's `MeetRoomMember`)."""

    memberId: str = Field(description="the user's id for a user; generated (`ext-...`) for an identified guest")
    roomId: str
    type: Literal["user", "identified_guest"]
    name: str
    membershipDate: int = Field(description="ms since the epoch")
    accessUrl: str
    baseRole: Literal["moderator", "speaker"]
    customPermissions: dict[str, bool] | None = omittable("the overrides of the base role's permissions, if any")
    effectivePermissions: dict[str, bool] = Field(description="the base role's permissions with the overrides")
    permissionsUpdatedAt: int = Field(description="ms since the epoch")


class MemberPagination(_Body):
    isTruncated: bool
    nextPageToken: str | None = omittable()
    maxItems: int


class RoomMemberList(_Body):
    members: list[RoomMember]
    pagination: MemberPagination


class PublishToken(_Body):
    token: str = Field(description="send it as `Authorization: Bearer <token>` with the WHIP offer")
    whipUrl: str = Field(description="the WHIP endpoint: POST the SDP offer here")
    expiresAt: int = Field(description="ms since the epoch; a session started before keeps going")
    participantId: str = Field(description="who the token publishes as (tile and call presence)")


class PublishStatus(_Body):
    recording: bool = Field(description="a recording of the room is in progress")
    status: str | None = Field(description="that recording's status, if any")


class UserToken(_Body):
    token: str = Field(description="send it as `Authorization: Bearer <token>`")
    role: Literal["admin", "user"]
    expiresAt: int = Field(description="ms since the epoch")


# ------------------------------------------------------------------------- health


class HealthCheck(_Body):
    status: Literal["up", "down"]
    error: str | None = omittable("why it is down; only for a caller with the API key")


class Health(_Body):
    status: Literal["up", "down"] = Field(description="`down` when any part is down (and the answer is 503)")
    catalog: HealthCheck
    objectStore: HealthCheck
    temporal: HealthCheck
    worker: HealthCheck = Field(description="a worker polled the task queue within the last 2 minutes")
    recorder: HealthCheck = Field(
        description="the recording server answers (built-in recorder's /health, Talk recording server, LiveKit)"
    )


# ------------------------------------------------------------------------- Talk OCS, recorders, webhooks


class OcsMeta(_Body):
    status: Literal["ok", "failure"]
    statuscode: int
    message: str


class OcsError(_Body):
    error: str = Field(description="Talk's error word: `status`, `config`, `call`, `recording`, `room`, `file`, ...")
    message: str | None = omittable()


class OcsErrorDetail(_Body):
    code: str = Field(description="`invalid_request`, `unknown_type`, `no_such_room`, ...")
    message: str


class OcsTypedError(_Body):
    """How Talk's recording-server endpoints refuse a request."""

    type: Literal["error"]
    error: OcsErrorDetail


class OcsEnvelope(_Body):
    meta: OcsMeta
    data: list[Any] | OcsError | OcsTypedError | dict[str, Any] | None = Field(
        description="null or [] when done; an error; or what was asked for (a room, capabilities, notifications)"
    )


class Ocs(_Body):
    """A Nextcloud OCS answer: `{ocs: {meta, data}}`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"ocs": {"meta": {"status": "ok", "statuscode": 200, "message": "OK"}, "data": []}},
                {
                    "ocs": {
                        "meta": {"status": "failure", "statuscode": 400, "message": "Bad Request"},
                        "data": {"error": "recording"},
                    }
                },
            ]
        },
    )

    ocs: OcsEnvelope


class WebhookResult(_Body):
    handled: str | None = omittable("the event acted on")
    ignored: str | None = omittable("why the event was not acted on")


class OpenApiDocument(BaseModel):
    model_config = ConfigDict(extra="allow")
    openapi: str


RESPONSE_MODELS: tuple[type[BaseModel], ...] = (
    Ocs,
    WebhookResult,
    OpenApiDocument,
    Error,
    Message,
    Recording,
    RecordingList,
    BulkDeleteResult,
    RecordingUrl,
    RoomConfig,
    Room,
    RoomList,
    RoomDeleted,
    RoomClosed,
    Call,
    Lobby,
    NotificationList,
    ChatLog,
    MemberToken,
    RoomMember,
    RoomMemberList,
    UserToken,
    PublishToken,
    PublishStatus,
    Recorders,
    Health,
)
