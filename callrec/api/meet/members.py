"""Registered room members, as OpenVidu Meet 3.8 has them, and member token refresh.

`POST /rooms/{roomId}/members` registers a user (`userId`) or an identified guest (`name`) with a base role
(`moderator` | `speaker`) and optional `customPermissions` over the role's (Meet's keys; the deprecated `can*`
spellings are read as aliases). A registered user then reaches the room's recordings with its effective
permissions (`auth.load_room_scope`). Managing members takes the API key, an admin user token or the room's owner
(Meet's `authorizeRoomManagement`); other credentials count as absent (401).

`POST /rooms/{roomId}/members/token/refresh` gives a new member token for the same member: with a member token of
the room (its identity, name and role kept; a registered member's permissions as they are now), or with a user
token of the room's owner or a registered member (a token for that user, its effective permissions).
"""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from quart import Blueprint, Response, jsonify
from sqlalchemy import delete as sql_delete
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from callrec.api import schemas
from callrec.api.auth import ADMINS_ONLY, EVERYONE, forbidden, require
from callrec.api.baseurl import api_url, public_base
from callrec.api.errors import ApiError, room_not_found
from callrec.api.meet.access import managed_room
from callrec.api.operations import Answer, Who, declare, error
from callrec.api.services import services
from callrec.domain import member_permissions as perms
from callrec.domain import tokens
from callrec.domain.ids import PLAIN_ID
from callrec.domain.tokens import Permission, Principal
from callrec.recordings.service import now_ms
from callrec.storage.rows import RoomMemberRow, RoomRow

blueprint = Blueprint("members", __name__)

MAX_ITEMS = 100
GUEST_PREFIX = "ext-"
# An identified guest joins with its access URL, which carries its base role's room secret: permissions of its own
# could not be held to it, so callrec refuses them rather than store what it does not enforce.
GUEST_PERMISSIONS = "customPermissions apply to registered users (userId) only; a guest has its base role's"


class MemberOptions(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"userId": "alice", "baseRole": "speaker"}, {"name": "Bob", "baseRole": "moderator"}]
        },
    )
    userId: str | None = Field(default=None, pattern=PLAIN_ID)
    name: str | None = Field(default=None, min_length=1, max_length=128)
    baseRole: Literal["moderator", "speaker"]
    customPermissions: dict[str, bool] | None = None

    @model_validator(mode="after")
    def one_identity(self) -> MemberOptions:
        if (self.userId is None) == (self.name is None):
            raise ValueError("Either userId or name must be provided, but not both")
        if self.name is not None and self.customPermissions:
            raise ValueError(GUEST_PERMISSIONS)
        if self.customPermissions is not None:
            self.customPermissions = perms.normalize(self.customPermissions)
        return self


class MemberUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    baseRole: Literal["moderator", "speaker"] | None = None
    customPermissions: dict[str, bool] | None = None

    @model_validator(mode="after")
    def known_keys(self) -> MemberUpdate:
        if self.customPermissions is not None:
            self.customPermissions = perms.normalize(self.customPermissions)
        return self


class MembersQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    maxItems: int = Field(default=10, ge=1)
    nextPageToken: str | None = None


def not_found(room_id: str, member_id: str) -> ApiError:
    return ApiError(404, "Room Member Error", f"Room member '{member_id}' not found in room '{room_id}'")


def member_view(row: RoomMemberRow, room: RoomRow) -> dict[str, Any]:
    base = public_base()
    if row.user_id is not None:
        access_url = f"{base}/room/{room.room_id}"
    else:
        secret = room.moderator_secret if row.base_role == "moderator" else room.speaker_secret
        access_url = f"{base}/room/{room.room_id}?secret={secret}"
    view: dict[str, Any] = {
        "memberId": row.member_id,
        "roomId": row.room_id,
        "type": "user" if row.user_id is not None else "identified_guest",
        "name": row.name,
        "membershipDate": row.membership_date,
        "accessUrl": access_url,
        "baseRole": row.base_role,
        "effectivePermissions": perms.effective(row.base_role, row.custom_permissions),
        "permissionsUpdatedAt": row.permissions_updated_at,
    }
    if row.custom_permissions:
        view["customPermissions"] = row.custom_permissions
    return view


async def get_member(room_id: str, member_id: str) -> RoomMemberRow | None:
    async with services().catalog.sessions() as session:
        return await session.get(RoomMemberRow, (room_id, member_id))


def _managers(**_: object) -> None:
    require(kinds=ADMINS_ONLY)


@blueprint.post("/rooms/<room_id>/members")
@declare(
    "createRoomMember",
    "Register a room member",
    tag="Room members",
    security=Who.APPS_AND_USERS,
    responses={
        201: Answer("The member", schemas.RoomMember, headers={"Location": {"schema": {"type": "string"}}}),
        401: error(),
        403: error("Not the room's owner nor an admin"),
        404: error("No such room"),
        409: error("Already a member, or the room's owner"),
        422: error(),
    },
    body=MemberOptions,
    auth=_managers,
)
async def create_member(room_id: str, body: MemberOptions) -> tuple[Response, int, dict[str, str]]:
    room = await managed_room(room_id)
    if body.userId is not None and body.userId == room.owner:
        message = (
            f"User '{body.userId}' cannot be added as a member of room '{room_id}' "
            "because they are the room owner or an admin"
        )
        raise ApiError(409, "Room Member Error", message)
    now = now_ms()
    row = RoomMemberRow(
        room_id=room_id,
        member_id=body.userId if body.userId is not None else GUEST_PREFIX + secrets.token_urlsafe(12),
        user_id=body.userId,
        name=body.userId if body.userId is not None else body.name or "",
        base_role=body.baseRole,
        custom_permissions=body.customPermissions or None,
        membership_date=now,
        permissions_updated_at=now,
    )
    try:
        async with services().catalog.writing() as session:
            session.add(row)
    except IntegrityError as exc:
        message = f"User '{body.userId}' is already a member of room '{room_id}'"
        raise ApiError(409, "Room Member Error", message) from exc
    location = api_url(f"/rooms/{room_id}/members/{row.member_id}")
    return jsonify(member_view(row, room)), 201, {"Location": location}


def _decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ApiError(
            422,
            "Unprocessable Entity",
            "Invalid request",
            [{"field": "nextPageToken", "message": "Invalid page token"}],
        ) from exc


@blueprint.get("/rooms/<room_id>/members")
@declare(
    "getRoomMembers",
    "List a room's registered members",
    tag="Room members",
    security=Who.APPS_AND_USERS,
    responses={200: Answer("A page of members", schemas.RoomMemberList), 401: error(), 403: error(), 404: error()},
    query=MembersQuery,
    auth=_managers,
)
async def list_members(room_id: str, query: MembersQuery) -> Response:
    """By member id, `maxItems` at a time (at most 100); `nextPageToken` continues."""
    room = await managed_room(room_id)
    limit = min(query.maxItems, MAX_ITEMS)
    statement = select(RoomMemberRow).where(RoomMemberRow.room_id == room_id).order_by(RoomMemberRow.member_id)
    if query.nextPageToken:
        statement = statement.where(RoomMemberRow.member_id > _decode_token(query.nextPageToken))
    async with services().catalog.sessions() as session:
        rows = list((await session.execute(statement.limit(limit + 1))).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    pagination: dict[str, Any] = {"isTruncated": more, "maxItems": limit}
    if more:
        pagination["nextPageToken"] = base64.urlsafe_b64encode(rows[-1].member_id.encode()).decode().rstrip("=")
    return jsonify({"members": [member_view(row, room) for row in rows], "pagination": pagination})


@blueprint.get("/rooms/<room_id>/members/<member_id>")
@declare(
    "getRoomMember",
    "Get a registered room member",
    tag="Room members",
    security=Who.EVERYONE,
    responses={200: Answer("The member", schemas.RoomMember), 401: error(), 403: error(), 404: error()},
    auth=lambda **_: require(kinds=EVERYONE),
)
async def get_room_member(room_id: str, member_id: str) -> Response:
    """The room's managers see any member; a member (its member token or its user token) sees itself."""
    who = require(kinds=EVERYONE)
    room = await services().catalog.get_room(room_id)
    if room is None:
        raise room_not_found(room_id)
    manager = who.is_admin or (who.kind == "user" and room.owner == who.subject)
    itself = who.subject == member_id and (who.kind == "user" or who.room_id == room_id)
    if not (manager or itself):
        raise forbidden()
    row = await get_member(room_id, member_id)
    if row is None:
        raise not_found(room_id, member_id)
    return jsonify(member_view(row, room))


@blueprint.put("/rooms/<room_id>/members/<member_id>")
@declare(
    "updateRoomMember",
    "Change a registered member's role or custom permissions",
    tag="Room members",
    security=Who.APPS_AND_USERS,
    responses={200: Answer("The member", schemas.RoomMember), 401: error(), 403: error(), 404: error(), 422: error()},
    body=MemberUpdate,
    auth=_managers,
)
async def update_member(room_id: str, member_id: str, body: MemberUpdate) -> Response:
    room = await managed_room(room_id)
    async with services().catalog.writing() as session:
        row = await session.get(RoomMemberRow, (room_id, member_id))
        if row is None:
            raise not_found(room_id, member_id)
        if row.user_id is None and body.customPermissions:
            raise ApiError(422, "Unprocessable Entity", "Invalid request",
                           [{"field": "customPermissions", "message": GUEST_PERMISSIONS}])  # fmt: skip
        if body.baseRole is not None:
            row.base_role = body.baseRole
        if body.customPermissions is not None:
            row.custom_permissions = (row.custom_permissions or {}) | body.customPermissions
        row.permissions_updated_at = now_ms()
    return jsonify(member_view(row, room))


@blueprint.delete("/rooms/<room_id>/members/<member_id>")
@declare(
    "deleteRoomMember",
    "Remove a registered room member",
    tag="Room members",
    security=Who.APPS_AND_USERS,
    responses={200: Answer("Removed", schemas.Message), 401: error(), 403: error(), 404: error()},
    auth=_managers,
)
async def delete_member(room_id: str, member_id: str) -> Response:
    await managed_room(room_id)
    async with services().catalog.writing() as session:
        result = await session.execute(
            sql_delete(RoomMemberRow).where(RoomMemberRow.room_id == room_id, RoomMemberRow.member_id == member_id)
        )
    if getattr(result, "rowcount", 0) == 0:
        raise not_found(room_id, member_id)
    return jsonify({"message": f"Member '{member_id}' deleted successfully from room '{room_id}'"})


@blueprint.post("/rooms/<room_id>/members/token/refresh")
@declare(
    "refreshRoomMemberToken",
    "Refresh a member token",
    tag="Room members",
    security=Who.EVERYONE,
    responses={
        200: Answer("A new token for the same member", schemas.MemberToken),
        401: error(),
        403: error("Not a member of this room"),
        404: error("No such room"),
        409: error("The room is closed"),
    },
    auth=lambda **_: require(kinds=EVERYONE),
)
async def refresh_token(room_id: str) -> Response:
    who = require(kinds=EVERYONE)
    room = await services().catalog.get_room(room_id)
    if room is None:
        raise room_not_found(room_id)
    if room.status == "closed":
        raise ApiError(409, "Room Error", f"Room '{room_id}' is closed")
    role, granted, member_id, name = await _refreshed(who, room)
    settings = services().settings
    token = tokens.member_token(
        settings.token_key,
        room_id,
        name,
        role,
        settings.member_token_ttl_s,
        granted,
        member_id=member_id,
        generation=room.token_generation,
    )
    return jsonify({"token": token, "role": role, "permissions": sorted(granted), "memberId": member_id})


async def _refreshed(
    who: Principal, room: RoomRow
) -> tuple[Literal["moderator", "speaker"], frozenset[Permission], str, str]:
    """Role, permissions, identity and name of the new token; 403 when `who` is no member of the room."""
    if who.kind == "member":
        if who.room_id != room.room_id:
            raise forbidden()
        if who.subject.startswith(tokens.MEMBER_PREFIX):  # from the room's secret: the same role and permissions
            role: Literal["moderator", "speaker"] = "moderator" if who.role == "moderator" else "speaker"
            return role, who.permissions, who.subject, who.name or who.subject
        # a token of a registered user or of the owner: what they are now (removed or demoted members lose it)
        if room.owner == who.subject:
            return "moderator", tokens.ALL_PERMISSIONS, who.subject, who.name or who.subject
        row = await get_member(room.room_id, who.subject)
        if row is None:
            raise forbidden()
        role = "moderator" if row.base_role == "moderator" else "speaker"
        granted = perms.effective_recording_permissions(row.base_role, row.custom_permissions)
        return role, granted, who.subject, row.name
    if who.kind == "user" and room.owner == who.subject:
        return "moderator", tokens.ALL_PERMISSIONS, who.subject, who.subject
    if who.kind == "user":
        row = await get_member(room.room_id, who.subject)
        if row is not None:
            role = "moderator" if row.base_role == "moderator" else "speaker"
            return (
                role,
                perms.effective_recording_permissions(row.base_role, row.custom_permissions),
                row.member_id,
                row.name,
            )
    raise forbidden()
