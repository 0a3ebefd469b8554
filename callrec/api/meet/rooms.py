"""Rooms, their recording config, and call presence fed by the conferencing side."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, Response, jsonify, request

from callrec.api import auth, errors, member_exchange, pagetoken, schemas
from callrec.api.auth import principal, require
from callrec.api.baseurl import api_url
from callrec.api.errors import ApiError, room_not_found
from callrec.api.meet import room_deletion
from callrec.api.meet.access import managed_room
from callrec.api.meet.filters import check_name_filter
from callrec.api.meet.room_deletion import DeleteRoomQuery
from callrec.api.meet.views import call_view, room_view
from callrec.api.operations import (
    LOCATION,
    QUERY_DOCS,
    Answer,
    Who,
    declare,
    error,
    query,
    query_args,
)
from callrec.api.services import services
from callrec.api.validation import QueryBool, check_max_items
from callrec.domain import talk_room, tokens
from callrec.domain.encoding import EncodingOverride
from callrec.domain.encoding import merge as merge_encoding
from callrec.domain.ids import new_room_id
from callrec.domain.layout import AutoStart, Layout, RecordingConfig
from callrec.domain.participants import Participant
from callrec.recordings.service import now_ms
from callrec.storage.catalog import RoomNotFound
from callrec.storage.rows import RoomRow
from callrec.storage.textmatch import MatchMode

blueprint = Blueprint("rooms", __name__)


class RoomConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    recording: RecordingConfig = RecordingConfig()


class CreateRoom(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"roomName": "Weekly sync", "config": {"recording": {"enabled": True, "layout": "grid"}}}]
        },
    )
    roomName: str = Field(default="Room", min_length=1, max_length=128)
    config: RoomConfig = RoomConfig()


class RecordingConfigPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool | None = None
    layout: Layout | None = None
    encoding: EncodingOverride | None = None  # options given in part keep the room's other values
    publicAccess: bool | None = None
    autoShareToChat: bool | None = None
    autoStart: AutoStart | None = None


class RoomConfigPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    recording: RecordingConfigPatch


class UpdateRoomConfig(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"config": {"recording": {"layout": "speaker", "autoShareToChat": True}}}]},
    )
    config: RoomConfigPatch


class PutCall(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"participants": [{"id": "alice", "name": "Alice", "role": "moderator"}, {"name": "Bob"}]}]
        },
    )
    participants: list[Participant] = Field(max_length=256)


class MemberTokenRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"secret": "<the room's moderatorSecret>", "participantName": "Alice"}]},
    )
    secret: str = Field(min_length=1, max_length=256)
    participantName: str = Field(default="participant", min_length=1, max_length=128)


class PutLobby(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"enabled": True}]})
    enabled: bool = Field(description="only moderators may start or stop recordings while the lobby is on")


class RoomListFilters(BaseModel):
    """GET /rooms filters (Meet's `MeetRoomFilters` that callrec has data for)."""

    model_config = ConfigDict(extra="ignore")
    roomName: str | None = Field(default=None, min_length=1, max_length=256)
    roomNameMatchMode: MatchMode = MatchMode.EXACT
    roomNameCaseInsensitive: QueryBool = False
    status: Literal["open", "closed"] | None = None

    def canonical(self) -> dict[str, Any]:
        """What a page token is bound to: equal filters give equal dicts."""
        named = self.roomName is not None
        return {
            "roomName": self.roomName,
            "match": self.roomNameMatchMode.value if named else None,
            "ci": self.roomNameCaseInsensitive if named else None,
            "status": self.status,
        }


ROOM_FILTER_DOCS = (
    query("roomName", {"type": "string"}, "Only rooms with this name (see `roomNameMatchMode`)."),
    query(
        "roomNameMatchMode",
        {"type": "string", "enum": [m.value for m in MatchMode], "default": "exact"},
        "How `roomName` matches: the whole name, its start, any part, or a regular expression (found anywhere "
        "unless anchored; at most 100 characters, repetitions up to 255, no backreferences or lookaround).",
    ),
    query("roomNameCaseInsensitive", {"type": "boolean", "default": False}, "Whether `roomName` ignores case."),
    query("status", {"type": "string", "enum": ["open", "closed"]}, "Only rooms with this status."),
)


def require_admin(**_: object) -> None:
    auth.require_admin()


def require_manager(**_: object) -> None:
    """Admins, and users who may own rooms (whether this one is theirs: `managed_room`)."""
    require(kinds=auth.ADMINS_ONLY)


def show_room(room: RoomRow) -> dict[str, Any]:
    """Admins and the room's owner also see the secrets that members exchange for tokens."""
    who = principal()
    owner = who is not None and who.kind == "user" and room.owner == who.subject
    return room_view(room, with_secrets=who is not None and (who.is_admin or owner))


def require_room_creator() -> None:
    """Meet: the API key and user tokens (role admin or user) create rooms; a user owns the rooms it creates."""
    require(kinds=auth.ADMINS_ONLY)


def _config_json(config: RecordingConfig) -> dict[str, Any]:
    return config.model_dump(mode="json", by_alias=True)


async def get_room_or_404(room_id: str) -> RoomRow:
    return await services().recordings.room(room_id)


def room_closed(room_id: str) -> ApiError:
    return ApiError(409, "Room Error", f"Room '{room_id}' is closed")


@blueprint.post("/rooms")
@declare(
    "createRoom",
    "Create a room",
    tag="Rooms",
    security=Who.ADMINS,
    responses={201: Answer("The room, with its secrets", schemas.Room, headers={"Location": LOCATION}), 403: error()},
    body=CreateRoom,
    auth=require_room_creator,
)
async def create_room(body: CreateRoom) -> tuple[Response, int, dict[str, str]]:
    who = require(kinds=auth.ADMINS_ONLY)
    room = RoomRow(
        room_id=new_room_id(body.roomName),
        room_name=body.roomName,
        config=_config_json(body.config.recording),
        creation_date=now_ms(),
        owner=who.subject if who.kind == "user" else None,
    )
    room = await services().catalog.add_room(room)
    return jsonify(show_room(room)), 201, {"Location": api_url(f"/rooms/{room.room_id}")}


@blueprint.get("/rooms")
@declare(
    "getRooms",
    "List rooms",
    tag="Rooms",
    security=Who.APPS_AND_USERS,
    responses={
        200: Answer("A page of rooms", schemas.RoomList),
        403: error("Member tokens may not list rooms"),
        422: error(),
    },
    parameters=(
        query("maxItems", {"type": "integer", "minimum": 1, "default": 10}, QUERY_DOCS["maxItems"]),
        query("nextPageToken", {"type": "string"}, QUERY_DOCS["nextPageToken"]),
        *ROOM_FILTER_DOCS,
    ),
)
async def list_rooms() -> Response:
    """Rooms, newest first; `nextPageToken` continues where the last page ended (with the same filters). A user
    with role `user` sees only the rooms it owns or is a member of."""
    who = require(kinds=frozenset({"api_key", "user"}))
    filters = query_args(RoomListFilters)
    check_name_filter(filters.roomName, filters.roomNameMatchMode)
    bound = filters.canonical()
    limit = check_max_items(request.args.get("maxItems"))
    key = pagetoken.derive_key(services().settings.token_key, "rooms")
    after = None
    if token := request.args.get("nextPageToken"):
        try:
            last = pagetoken.unsign(key, token)
            after = (int(last["creationDate"]), str(last["roomId"]))
            if last.get("filters") != bound:
                raise pagetoken.InvalidPageToken("made for another listing (other filters)")
        except (pagetoken.InvalidPageToken, KeyError, ValueError) as exc:
            raise errors.invalid_parameter("nextPageToken", str(exc)) from exc
    rows = list(
        await services().catalog.list_rooms(
            limit + 1,
            after,
            room_name=filters.roomName,
            match=filters.roomNameMatchMode,
            case_insensitive=filters.roomNameCaseInsensitive,
            status=filters.status,
            room_ids=sorted(auth.room_scope()) if auth.is_scoped(who) else None,
        )
    )
    page, more = rows[:limit], len(rows) > limit
    last_row = page[-1] if more else None
    next_token = (
        pagetoken.sign(key, {"creationDate": last_row.creation_date, "roomId": last_row.room_id, "filters": bound})
        if last_row
        else None
    )
    return jsonify(
        {
            "rooms": [show_room(room) for room in page],
            "pagination": {"isTruncated": more, "nextPageToken": next_token, "maxItems": limit},
        }
    )


@blueprint.get("/rooms/<room_id>")
@declare(
    "getRoom",
    "Get a room",
    tag="Rooms",
    security=Who.EVERYONE,
    responses={
        200: Answer("The room (secrets for admins only)", schemas.Room),
        403: error(),
        404: error("No such room"),
    },
)
async def get_room(room_id: str) -> Response:
    """The room, with Talk's `callRecording` (0-5: none, video, audio, starting video, starting audio, failed) and
    `recordingConsent` (1: joining the call needs consent to be recorded)."""
    require(room_id=room_id)
    row = await get_room_or_404(room_id)
    consent = talk_room.effective_consent(services().settings.recording_consent, row.recording_consent)
    return jsonify(show_room(row) | {"callRecording": row.call_recording, "recordingConsent": consent})


@blueprint.delete("/rooms/<room_id>")
@declare(
    "deleteRoom",
    "Delete or close a room",
    tag="Rooms",
    security=Who.ADMINS,
    responses={
        200: Answer("Deleted (with its recordings), or closed", one_of=(schemas.RoomDeleted, schemas.RoomClosed)),
        403: error(),
        404: error("No such room"),
        409: error(
            "Meet's conflicts (`error`: `room_has_active_meeting`, `room_has_recordings`, "
            "`room_with_active_meeting_has_recordings`, `room_with_recordings_has_active_meeting`), a recording in "
            "progress, or some recordings could not be deleted"
        ),
        422: error(),
    },
    query=DeleteRoomQuery,
    auth=require_manager,
)
async def delete_room(room_id: str, query: DeleteRoomQuery) -> tuple[Response, int]:
    """As OpenVidu Meet: `withMeeting` (`fail`, `force`; the call is the meeting) and `withRecordings` (`fail`,
    `force`, `close`: keep them, close the room); the answer carries Meet's `successCode` (room_deletion.py).
    The API key, an admin, or the user who owns the room."""
    await managed_room(room_id)
    body, status = await room_deletion.delete_room(room_id, query)
    return jsonify(body), status


@blueprint.post("/rooms/<room_id>/members/token")
@declare(
    "createRoomMemberToken",
    "Exchange a room secret for a member token",
    tag="Rooms",
    security=Who.NONE,
    responses={
        200: Answer("The token, its role and permissions", schemas.MemberToken),
        400: error("Malformed body, or the secret is not one of the room's"),
        404: error("No such room"),
        409: error("The room is closed"),
    },
    body=MemberTokenRequest,
    notes="No credential needed: the room's moderator or speaker secret stands in for one.",
)
async def member_token(room_id: str, body: MemberTokenRequest) -> Response:
    """Exchanges the room's moderator or speaker secret for a member token scoped to this room."""
    room = await get_room_or_404(room_id)
    if room.status == "closed":
        raise room_closed(room_id)
    exchanged = member_exchange.exchange(services().settings, room, body.secret, body.participantName)
    if exchanged is None:
        raise ApiError(400, "Room Error", f"Secret is not recognized for room '{room_id}'")
    token, role, member_id = exchanged.token, exchanged.role, exchanged.member_id
    permissions = sorted(tokens.ROLE_PERMISSIONS[role])
    return jsonify({"token": token, "role": role, "permissions": permissions, "memberId": member_id})


@blueprint.post("/rooms/<room_id>/secrets/rotate")
@declare(
    "rotateRoomSecrets",
    "Rotate a room's secrets",
    tag="Rooms",
    security=Who.ADMINS,
    responses={
        200: Answer("The room, with its new secrets", schemas.Room),
        403: error("Needs the admin role"),
        404: error("No such room"),
    },
    auth=require_admin,
    notes="New moderator and speaker secrets; the old ones no longer exchange for tokens, and every member token "
    "issued before (from either secret) is refused from now on (401). Recordings and their secrets are unchanged.",
)
async def rotate_room_secrets(room_id: str) -> Response:
    """Replaces both member secrets and revokes the room's member tokens (for a leaked link or a removed member)."""
    try:
        room = await services().catalog.revoke_member_tokens(room_id, new_secrets=True)
    except RoomNotFound as exc:
        raise room_not_found(room_id) from exc
    return jsonify(show_room(room))


@blueprint.get("/rooms/<room_id>/config")
@declare(
    "getRoomConfig",
    "Get a room's config",
    tag="Rooms",
    security=Who.EVERYONE,
    responses={200: Answer("The config", schemas.RoomConfig), 403: error(), 404: error("No such room")},
)
async def get_room_config(room_id: str) -> Response:
    require(room_id=room_id)
    return jsonify({"recording": (await get_room_or_404(room_id)).config})


@blueprint.put("/rooms/<room_id>/config")
@declare(
    "updateRoomConfig",
    "Update a room's config",
    tag="Rooms",
    security=Who.ADMINS,
    responses={
        200: Answer("The config now", schemas.RoomConfig),
        403: error(),
        404: error("No such room"),
        409: error("A recording runs and the change would alter its settings"),
    },
    body=UpdateRoomConfig,
    auth=require_manager,
)
async def put_room_config(room_id: str, body: UpdateRoomConfig) -> Response:
    """Changes the given fields; 409 while a recording runs if the change would alter the recording settings.
    The API key, an admin, or the user who owns the room."""
    room = await managed_room(room_id)
    current = RecordingConfig.model_validate(room.config)
    # A field left out, or given as null, keeps its value.
    patch = body.config.recording.model_dump(mode="json", by_alias=True, exclude_none=True)
    if body.config.recording.encoding is not None:  # laid over the room's encoding, field by field
        patch["encoding"] = merge_encoding(current.encoding, body.config.recording.encoding)
    updated = RecordingConfig.model_validate(current.model_dump(mode="json", by_alias=True) | patch)
    recording_fields = {"enabled", "layout", "encoding"}
    changes = {f for f in recording_fields if getattr(updated, f) != getattr(current, f)}
    if changes and await services().catalog.recording_in_progress(room_id) is not None:
        raise ApiError(409, "Room Error", f"Room '{room_id}' is being recorded; {', '.join(sorted(changes))} "
                       "cannot change until the recording ends")  # fmt: skip
    try:
        room = await services().catalog.set_room_config(room_id, _config_json(updated))
    except RoomNotFound as exc:
        raise room_not_found(room_id) from exc
    return jsonify({"recording": room.config})


@blueprint.get("/rooms/<room_id>/call")
@declare(
    "getRoomCall",
    "Get a room's call",
    tag="Rooms",
    security=Who.EVERYONE,
    responses={200: Answer("The call", schemas.Call), 403: error(), 404: error("No such room, or no active call")},
)
async def get_call(room_id: str) -> Response:
    require(room_id=room_id)
    await get_room_or_404(room_id)
    call = await services().catalog.get_call(room_id)
    if call is None:
        raise ApiError(404, "Call Error", f"Room '{room_id}' has no active call")
    return jsonify(call_view(call))


@blueprint.put("/rooms/<room_id>/call")
@declare(
    "putRoomCall",
    "Set a room's call participants",
    tag="Rooms",
    security=Who.ADMINS,
    responses={
        200: Answer("The call", schemas.Call),
        403: error(),
        404: error("No such room"),
        409: error("The room is closed"),
    },
    body=PutCall,
    notes="What the conferencing side reports: who is in the call now. Starts the call if there is none.",
    auth=require_admin,
)
async def put_call(room_id: str, body: PutCall) -> Response:
    room = await get_room_or_404(room_id)
    if room.status == "closed":
        raise room_closed(room_id)
    call = await services().calls.put(room, [p.model_dump(mode="json") for p in body.participants])
    return jsonify(call_view(call))


@blueprint.put("/rooms/<room_id>/lobby")
@declare(
    "putRoomLobby",
    "Turn a room's lobby on or off",
    tag="Rooms",
    security=Who.ADMINS,
    responses={200: Answer("The lobby now", schemas.Lobby), 403: error(), 404: error("No such room")},
    body=PutLobby,
    auth=require_admin,
)
async def put_lobby(room_id: str, body: PutLobby) -> Response:
    """Turns the room's lobby on or off (Talk's webinar lobby, as far as recordings are concerned)."""
    try:
        room = await services().catalog.set_room_lobby(room_id, body.enabled)
    except RoomNotFound as exc:
        raise room_not_found(room_id) from exc
    return jsonify({"enabled": room.lobby})


@blueprint.delete("/rooms/<room_id>/call")
@declare(
    "endRoomCall",
    "End a room's call",
    tag="Rooms",
    security=Who.ADMINS,
    responses={204: Answer("Ended"), 403: error(), 404: error("No such room, or no active call")},
)
async def end_call(room_id: str) -> tuple[str, int]:
    """Ends the call; a recording in progress stops and is stored."""
    require_admin()
    if not await services().calls.end(await get_room_or_404(room_id)):
        raise ApiError(404, "Call Error", f"Room '{room_id}' has no active call")
    return "", 204
