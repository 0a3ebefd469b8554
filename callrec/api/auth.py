"""Who is calling, and may they? Three credentials; the highest one present wins and must be valid.

`X-API-KEY` (admin) > `Authorization: Bearer <user token>` (admin | user) > `X-Room-Member-Token`
(one room; moderator | speaker; recording permissions; sent with or without a `Bearer ` prefix, as Meet's
clients send it). Routes call `require(...)`.

A 401 names the header to send; a credential of a kind the endpoint does not take counts as absent (401, as in
OpenVidu Meet, whose endpoints only look at the credentials they list). A 403 names what the caller lacks (a
permission, or a token of the resource's room). A user token with role `user` reaches only the rooms it owns
(created) or is a registered member of (`load_room_scope`, run once per request), with the permissions it holds
there: owner all, member its effective ones; elsewhere Meet's 403 ("Insufficient permissions to access this
resource"). A member token is also checked against its room on every request,
whichever front door it comes through (`refuse_revoked_member_token`, an app-wide hook): the room must
still exist, be open, and be in the token generation the token was minted in.
"""

from __future__ import annotations

import hmac
from dataclasses import replace
from typing import Literal

from quart import g, request
from sqlalchemy import select

from callrec.api.errors import ApiError, invalid_api_key, unauthorized
from callrec.api.services import services
from callrec.domain.member_permissions import effective_recording_permissions
from callrec.domain.tokens import (
    ADMIN,
    ALL_PERMISSIONS,
    MEMBER_PREFIX,
    InvalidToken,
    Kind,
    Permission,
    Principal,
    read_token,
)
from callrec.storage.rows import RoomMemberRow, RoomRow

API_KEY_HEADER = "X-API-KEY"
MEMBER_TOKEN_HEADER = "X-Room-Member-Token"
EVERYONE: frozenset[Kind] = frozenset({"api_key", "user", "member"})
APPS_AND_MEMBERS: frozenset[Kind] = frozenset({"api_key", "member"})
ADMINS_ONLY: frozenset[Kind] = frozenset({"api_key", "user"})  # roles checked apart (`require_admin`, `managed_room`)


INSUFFICIENT = "Insufficient permissions to access this resource"  # Meet's errorInsufficientPermissions


def forbidden(needs: str = INSUFFICIENT) -> ApiError:
    return ApiError(403, "Authorization Error", needs)


def invalid_token(header: str, reason: str) -> ApiError:
    return ApiError(401, "Authentication Error", f"Invalid token in {header}: {reason}")


def revoked_token(room_id: str, reason: str) -> ApiError:
    message = (
        f"{MEMBER_TOKEN_HEADER} is no longer valid: room '{room_id}' {reason}; "
        "exchange the room's current secret for a new token"
    )
    return ApiError(401, "Authentication Error", message)


def authenticate() -> Principal | None:
    settings = services().settings
    headers = request.headers
    api_key = headers.get(API_KEY_HEADER)
    if api_key is not None:
        if not hmac.compare_digest(api_key.encode(), settings.require_api_key().encode()):
            raise invalid_api_key()
        return ADMIN
    authorization = headers.get("Authorization")
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise invalid_token("Authorization", "send `Authorization: Bearer <user token>`")
        return _read(token.strip(), "user")
    member = headers.get(MEMBER_TOKEN_HEADER)
    if member is not None:
        who = _read(member_token_of(member), "member")
        registered: Principal | None = g.get("member_registration")  # `refuse_revoked_member_token`
        return registered if registered is not None and registered.subject == who.subject else who
    return None


def member_token_of(value: str) -> str:
    """The token in an `X-Room-Member-Token` header: Meet's clients send `Bearer <token>`, others the bare token."""
    value = value.strip()
    scheme, _, rest = value.partition(" ")
    return rest.strip() if scheme.lower() == "bearer" and rest.strip() else value


def _read(token: str, expected: Literal["user", "member"]) -> Principal:
    header = "Authorization: Bearer" if expected == "user" else MEMBER_TOKEN_HEADER
    try:
        return read_token(services().settings.token_key, token, expected)
    except InvalidToken as exc:
        raise invalid_token(header, str(exc)) from exc


async def refuse_revoked_member_token() -> None:
    """Before every request: a member token that counts (no API key, no Bearer) must be of its room as it is now.

    A member token minted for a registered user (refreshed with its user token) also counts for the registration
    as it is now: a removed member's token is refused, a changed one carries the new role and permissions (kept
    for `authenticate`). Tokens from the room's secrets (`member:...`) and the owner's are as they were minted.
    A token that does not even verify is left to the route that reads it (its own 401, or none where the
    route takes no credential).
    """
    headers = request.headers
    token = headers.get(MEMBER_TOKEN_HEADER)
    if token is None or API_KEY_HEADER in headers or "Authorization" in headers:
        return
    try:
        who = read_token(services().settings.token_key, member_token_of(token), "member")
    except InvalidToken:
        return
    assert who.room_id is not None
    room = await services().catalog.get_room(who.room_id)
    if room is None:
        raise revoked_token(who.room_id, "no longer exists")
    if room.status == "closed":
        raise revoked_token(who.room_id, "is closed")
    if who.generation != room.token_generation:
        raise revoked_token(who.room_id, "had its secrets rotated since this token was issued")
    if who.subject.startswith(MEMBER_PREFIX) or room.owner == who.subject:
        return
    async with services().catalog.sessions() as session:
        row = await session.get(RoomMemberRow, (who.room_id, who.subject))
    if row is None:
        raise revoked_token(who.room_id, f"no longer has '{who.subject}' as a member")
    role = "moderator" if row.base_role == "moderator" else "speaker"
    permissions = effective_recording_permissions(row.base_role, row.custom_permissions)
    g.member_registration = replace(who, role=role, permissions=permissions)


def principal() -> Principal | None:
    found: Principal | None = g.get("principal")
    return found


def is_scoped(who: Principal) -> bool:
    """A user token with role `user`: it reaches only its rooms (owned, or registered as a member)."""
    return who.kind == "user" and not who.is_admin


async def load_room_scope() -> None:
    """For a scoped user: the rooms it reaches and its recording permissions in each, kept for this request."""
    who = principal()
    if who is None or not is_scoped(who):
        return
    scope: dict[str, frozenset[Permission]] = {}
    async with services().catalog.sessions() as session:
        owned = await session.execute(select(RoomRow.room_id).where(RoomRow.owner == who.subject))
        memberships = await session.execute(select(RoomMemberRow).where(RoomMemberRow.user_id == who.subject))
        for member in memberships.scalars():
            scope[member.room_id] = effective_recording_permissions(member.base_role, member.custom_permissions)
        for room_id in owned.scalars():
            scope[room_id] = ALL_PERMISSIONS
    g.room_scope = scope


def room_scope() -> dict[str, frozenset[Permission]]:
    found: dict[str, frozenset[Permission]] = g.get("room_scope") or {}
    return found


def reachable_rooms(who: Principal, permission: Permission) -> tuple[str, ...] | None:
    """The rooms whose recordings `who` may reach with `permission`; None: no limit (API key, admin, member token
    (held to its own room elsewhere))."""
    if not is_scoped(who):
        return None
    return tuple(sorted(room for room, held in room_scope().items() if permission in held))


def require(
    permission: Permission | None = None, *, kinds: frozenset[Kind] = EVERYONE, room_id: str | None = None
) -> Principal:
    """The caller, if it may do this (to a resource of `room_id`, when given); else 401 or 403 saying why."""
    who = principal()
    if who is None or who.kind not in kinds:  # a credential the endpoint does not take counts as absent (Meet)
        raise unauthorized()
    if is_scoped(who):
        if room_id is not None and not confine(who, room_id, permission):
            raise forbidden()
        return who  # without a room: checked per room by the caller (`confine`, `reachable_rooms`)
    if permission is not None and permission not in who.permissions:
        raise forbidden(f"Insufficient permissions: needs {permission.value}")
    if room_id is not None and not confine(who, room_id):
        raise forbidden(f"Insufficient permissions: this member token is for room '{who.room_id}', not '{room_id}'")
    return who


def require_admin() -> Principal:
    """The API key, or a user token with role admin; else 401 or 403 saying so."""
    who = require(kinds=ADMINS_ONLY)
    if not who.is_admin:
        raise forbidden("Insufficient permissions: needs the admin role (the API key or an admin user token)")
    return who


def api_key_only() -> None:
    """An endpoint's check that only the API key calls it (any other credential counts as absent: 401)."""
    require(kinds=frozenset({"api_key"}))


def confine(who: Principal, room_id: str, permission: Permission | None = None) -> bool:
    """Whether `who` may reach resources of `room_id` at all (member tokens reach only their room; a scoped
    user only its rooms, with `permission` there when given)."""
    if is_scoped(who):
        held = room_scope().get(room_id)
        return held is not None and (permission is None or permission in held)
    return who.room_id is None or who.room_id == room_id
