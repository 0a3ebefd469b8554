"""Who is calling, and may they? Three credentials; the highest one present wins and must be valid.

`X-API-KEY` (admin) > `Authorization: Bearer <user token>` (admin | user) > `X-Room-Member-Token`
(one room; moderator | speaker; recording permissions). Routes call `require(...)`.

A 401 names the header to send; a 403 names what the caller lacks (a permission, a kind of credential,
or a token of the resource's room). A member token is also checked against its room on every request,
whichever front door it comes through (`refuse_revoked_member_token`, an app-wide hook): the room must
still exist, be open, and be in the token generation the token was minted in.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Literal

from quart import g, request

from callrec.api.errors import ApiError, invalid_api_key, unauthorized
from callrec.api.services import services
from callrec.domain.tokens import ADMIN, InvalidToken, Kind, Permission, Principal, read_token

API_KEY_HEADER = "X-API-KEY"
MEMBER_TOKEN_HEADER = "X-Room-Member-Token"
EVERYONE: frozenset[Kind] = frozenset({"api_key", "user", "member"})
APPS_AND_MEMBERS: frozenset[Kind] = frozenset({"api_key", "member"})
ADMINS_ONLY: frozenset[Kind] = frozenset({"api_key", "user"})  # with an admin role (see `forbidden_unless_admin`)

# How each credential is sent, as 401 and 403 answers name it.
HOW_TO_SEND: dict[Kind, str] = {
    "api_key": f"{API_KEY_HEADER}: <api key>",
    "user": "Authorization: Bearer <user token>",
    "member": f"{MEMBER_TOKEN_HEADER}: <member token>",
}


def forbidden(needs: str = "Insufficient permissions to access this resource") -> ApiError:
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
        return _read(member.strip(), "member")
    return None


def _read(token: str, expected: Literal["user", "member"]) -> Principal:
    header = "Authorization: Bearer" if expected == "user" else MEMBER_TOKEN_HEADER
    try:
        return read_token(services().settings.token_key, token, expected)
    except InvalidToken as exc:
        raise invalid_token(header, str(exc)) from exc


async def refuse_revoked_member_token() -> None:
    """Before every request: a member token that counts (no API key, no Bearer) must be of its room as it is now.

    A token that does not even verify is left to the route that reads it (its own 401, or none where the
    route takes no credential).
    """
    headers = request.headers
    token = headers.get(MEMBER_TOKEN_HEADER)
    if token is None or API_KEY_HEADER in headers or "Authorization" in headers:
        return
    try:
        who = read_token(services().settings.token_key, token.strip(), "member")
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


def principal() -> Principal | None:
    found: Principal | None = g.get("principal")
    return found


def _credentials(kinds: frozenset[Kind]) -> str:
    return " or ".join(f"`{HOW_TO_SEND[kind]}`" for kind in ("api_key", "user", "member") if kind in kinds)


def require(
    permission: Permission | None = None, *, kinds: frozenset[Kind] = EVERYONE, room_id: str | None = None
) -> Principal:
    """The caller, if it may do this (to a resource of `room_id`, when given); else 401 or 403 saying why."""
    who = principal()
    if who is None:
        raise unauthorized()
    if who.kind not in kinds:
        raise forbidden(f"Insufficient permissions: this needs {_credentials(kinds)}, not a {who.kind} credential")
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


def api_key_only(may: str) -> Callable[[], None]:
    """An endpoint's check that only the API key calls it (401 without a credential, 403 with another kind)."""

    def check() -> None:
        if require().kind != "api_key":
            raise forbidden(f"Insufficient permissions: only the API key (`X-API-KEY`) may {may}")

    return check


def confine(who: Principal, room_id: str) -> bool:
    """Whether `who` may reach resources of `room_id` at all (member tokens reach only their room)."""
    return who.room_id is None or who.room_id == room_id
