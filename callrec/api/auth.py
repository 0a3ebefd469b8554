"""Who is calling, and may they? Three credentials; the highest one present wins and must be valid.

`X-API-KEY` (admin) > `Authorization: Bearer <user token>` (admin | user) > `X-Room-Member-Token`
(one room; moderator | speaker; recording permissions). Routes call `require(...)`.
"""

from __future__ import annotations

import hmac
from typing import Literal

from quart import g, request

from callrec.api.errors import ApiError, invalid_api_key, unauthorized
from callrec.api.services import services
from callrec.domain.tokens import ADMIN, InvalidToken, Kind, Permission, Principal, read_token

API_KEY_HEADER = "X-API-KEY"
MEMBER_TOKEN_HEADER = "X-Room-Member-Token"
EVERYONE: frozenset[Kind] = frozenset({"api_key", "user", "member"})
APPS_AND_MEMBERS: frozenset[Kind] = frozenset({"api_key", "member"})


def forbidden() -> ApiError:
    return ApiError(403, "Authorization Error", "Insufficient permissions to access this resource")


def invalid_token() -> ApiError:
    return ApiError(401, "Authentication Error", "Invalid token")


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
            raise invalid_token()
        return _read(token.strip(), "user")
    member = headers.get(MEMBER_TOKEN_HEADER)
    if member is not None:
        return _read(member.strip(), "member")
    return None


def _read(token: str, expected: Literal["user", "member"]) -> Principal:
    try:
        return read_token(services().settings.token_key, token, expected)
    except InvalidToken as exc:
        raise invalid_token() from exc


def principal() -> Principal | None:
    found: Principal | None = g.get("principal")
    return found


def require(
    permission: Permission | None = None, *, kinds: frozenset[Kind] = EVERYONE, room_id: str | None = None
) -> Principal:
    """The caller, if it may do this (to a resource of `room_id`, when given); else 401 or 403."""
    who = principal()
    if who is None:
        raise unauthorized()
    if who.kind not in kinds:
        raise forbidden()
    if permission is not None and permission not in who.permissions:
        raise forbidden()
    if room_id is not None and not confine(who, room_id):
        raise forbidden()
    return who


def confine(who: Principal, room_id: str) -> bool:
    """Whether `who` may reach resources of `room_id` at all (member tokens reach only their room)."""
    return who.room_id is None or who.room_id == room_id
