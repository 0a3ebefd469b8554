"""Rooms, their recording config, and call presence fed by the conferencing side."""

from __future__ import annotations

import hmac
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, Response, jsonify, request

from callrec.api import auth, errors, pagetoken, schemas
from callrec.api.auth import principal, require
from callrec.api.errors import ApiError, room_not_found
from callrec.api.meet.views import call_view, room_view
from callrec.api.operations import (
    LOCATION,
    QUERY_DOCS,
    Answer,
    Who,
    declare,
    error,
    query,
)
from callrec.api.services import services
from callrec.domain import tokens
from callrec.domain.ids import new_room_id
from callrec.domain.layout import AutoStart, Encoding, Layout, RecordingConfig
from callrec.domain.participants import Participant
from callrec.recordings.service import now_ms
from callrec.storage.catalog import RoomNotFound, RoomRow

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
    encoding: Encoding | None = None
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


class DeleteRoomQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    withRecordings: Literal["fail", "force", "close"] = "fail"


def require_admin(**_: object) -> None:
    auth.require_admin()


def show_room(room: RoomRow) -> dict[str, Any]:
    """Admins also see the secrets that members exchange for tokens."""
    who = principal()
    return room_view(room, with_secrets=who is not None and who.is_admin)


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
    auth=require_admin,
)
async def create_room(body: CreateRoom) -> tuple[Response, int, dict[str, str]]:
    room = RoomRow(
        room_id=new_room_id(body.roomName),
        room_name=body.roomName,
        config=_config_json(body.config.recording),
        creation_date=now_ms(),
    )
    room = await services().catalog.add_room(room)
    return jsonify(show_room(room)), 201, {"Location": f"/api/v1/rooms/{room.room_id}"}


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
    ),
)
async def list_rooms() -> Response:
    """Rooms, newest first; `nextPageToken` continues where the last page ended."""
    require(kinds=frozenset({"api_key", "user"}))
    raw = request.args.get("maxItems", "10")
    limit = min(int(raw), 100) if raw.isascii() and raw.isdigit() and len(raw) <= 9 else 0
    if limit < 1:
        raise errors.invalid_parameter("maxItems", "must be a whole number of at least 1")
    key = pagetoken.derive_key(services().settings.token_key, "rooms")
    after = None
    if token := request.args.get("nextPageToken"):
        try:
            last = pagetoken.unsign(key, token)
            after = (int(last["creationDate"]), str(last["roomId"]))
        except (pagetoken.InvalidPageToken, KeyError, ValueError) as exc:
            raise errors.invalid_parameter("nextPageToken", str(exc)) from exc
    rows = list(await services().catalog.list_rooms(limit + 1, after))
    page, more = rows[:limit], len(rows) > limit
    last_row = page[-1] if more else None
    next_token = (
        pagetoken.sign(key, {"creationDate": last_row.creation_date, "roomId": last_row.room_id}) if last_row else None
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
    """The room, with `callRecording`: Talk's recording status 0-5 (none, video, audio, starting video,
    starting audio, failed)."""
    require(room_id=room_id)
    room = show_room(await get_room_or_404(room_id))
    return jsonify(room | {"callRecording": await services().recordings.talk_status(room_id)})


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
        409: error("A recording is in progress, the room has recordings (`fail`), or some could not be deleted"),
        422: error(),
    },
    query=DeleteRoomQuery,
    auth=require_admin,
)
async def delete_room(room_id: str, query: DeleteRoomQuery) -> Response:
    """`withRecordings`: `fail` (409 if it has any), `force` (delete them too), `close` (keep them, close the room)."""
    mode = query.withRecordings
    await get_room_or_404(room_id)
    catalog, recordings = services().catalog, services().recordings
    in_progress = await catalog.recording_in_progress(room_id)
    if in_progress is not None and mode != "close":
        raise ApiError(409, "Room Error", f"Room '{room_id}' has a recording in progress; stop it first, "
                       "or close the room (withRecordings=close), which stops and stores it")  # fmt: skip
    rows = list(await catalog.recordings(room_id=room_id, limit=1_000_000))
    if mode == "close":
        await catalog.end_call(room_id)
        await catalog.set_room_status(room_id, "closed")
        await catalog.revoke_member_tokens(room_id)  # they stay refused even if the room opens again
        if in_progress is not None:
            await recordings.end(in_progress.recording_id, "room_deleted")
        return jsonify({"message": f"Room '{room_id}' closed", "recordings": len(rows)})
    if rows and mode == "fail":
        raise ApiError(409, "Room Error", f"Room '{room_id}' has {len(rows)} recordings; "
                       "delete them, or use withRecordings=force or close")  # fmt: skip
    reasons = await recordings.delete_many([row.recording_id for row in rows])
    failed = [(recording_id, reason) for recording_id, reason in reasons.items() if reason is not None]
    if failed:
        raise ApiError(409, "Room Error", f"Room '{room_id}' kept: {len(failed)} recordings could not be deleted",
                       [{"field": recording_id, "message": reason} for recording_id, reason in failed])  # fmt: skip
    await catalog.delete_room(room_id)
    return jsonify({"message": f"Room '{room_id}' deleted", "deletedRecordings": [r.recording_id for r in rows]})


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
    role: Literal["moderator", "speaker"]
    if hmac.compare_digest(body.secret.encode(), room.moderator_secret.encode()):
        role = "moderator"
    elif hmac.compare_digest(body.secret.encode(), room.speaker_secret.encode()):
        role = "speaker"
    else:
        raise ApiError(400, "Room Error", f"Secret is not recognized for room '{room_id}'")
    settings = services().settings
    member_id = tokens.new_member_id()
    token = tokens.member_token(
        settings.token_key,
        room_id,
        body.participantName,
        role,
        settings.member_token_ttl_s,
        member_id=member_id,
        generation=room.token_generation,
    )
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
    auth=require_admin,
)
async def put_room_config(room_id: str, body: UpdateRoomConfig) -> Response:
    """Changes the given fields; 409 while a recording runs if the change would alter the recording settings."""
    room = await get_room_or_404(room_id)
    current = RecordingConfig.model_validate(room.config)
    # A field left out, or given as null, keeps its value.
    patch = body.config.recording.model_dump(mode="json", by_alias=True, exclude_none=True)
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
    catalog = services().catalog
    previous = await catalog.get_call(room_id)
    before = [Participant.model_validate(p) for p in previous.participants] if previous else []
    participants = [p.model_dump(mode="json") for p in body.participants]
    try:
        call = await catalog.put_call(room_id, participants, now_ms())
    except RoomNotFound as exc:
        raise room_not_found(room_id) from exc
    await services().recordings.auto_start(room, before, call)
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
    await get_room_or_404(room_id)
    if not await services().recordings.end_call(room_id):
        raise ApiError(404, "Call Error", f"Room '{room_id}' has no active call")
    return "", 204
