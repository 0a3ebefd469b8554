"""Signed access tokens (JWT, HS256): user tokens (roles admin, user) and room member tokens.

A member token is scoped to one room and carries its role (moderator, speaker), its recording permissions
and the room's token generation when it was minted (closing the room or rotating its secrets bumps the
generation, which revokes the tokens of earlier ones). Its subject is an identity minted with the token
(`member:<random>`), never the display name the participant chose, which travels as `name`; notifications
are addressed to subjects. The old Meet permission names are accepted as aliases when tokens are read.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

import jwt

ALGORITHM = "HS256"
ISSUER = "callrec"
MEMBER_PREFIX = "member:"


class Permission(StrEnum):
    CONTROL = "recordingControl"
    LIST = "recordingList"
    PLAY = "recordingPlay"
    DOWNLOAD = "recordingDownload"
    DELETE = "recordingDelete"


ALL_PERMISSIONS = frozenset(Permission)
ALIASES: dict[str, frozenset[Permission]] = {
    "canRecord": frozenset({Permission.CONTROL}),
    "canRetrieveRecordings": frozenset({Permission.LIST, Permission.PLAY, Permission.DOWNLOAD}),
    "canDeleteRecordings": frozenset({Permission.DELETE}),
}
ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "admin": ALL_PERMISSIONS,
    "user": frozenset({Permission.LIST, Permission.PLAY, Permission.DOWNLOAD}),
    "moderator": ALL_PERMISSIONS,
    "speaker": frozenset({Permission.LIST, Permission.PLAY, Permission.DOWNLOAD}),
}

Kind = Literal["api_key", "user", "member"]


class InvalidToken(Exception):
    pass


@dataclass(frozen=True)
class Principal:
    """Who is calling, after authentication."""

    kind: Kind
    subject: str
    role: str
    permissions: frozenset[Permission]
    room_id: str | None = None  # member tokens only
    name: str | None = None  # member tokens only: the display name the participant chose (not an identity)
    generation: int = 0  # member tokens only: the room's token generation at minting

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


ADMIN = Principal(kind="api_key", subject="api-key", role="admin", permissions=ALL_PERMISSIONS)


def parse_permissions(names: object) -> frozenset[Permission]:
    if not isinstance(names, list):
        raise InvalidToken("permissions must be a list")
    found: set[Permission] = set()
    for name in names:
        if name in ALIASES:
            found |= ALIASES[name]
        elif name in Permission._value2member_map_:
            found.add(Permission(name))
        else:
            raise InvalidToken(f"unknown permission {name!r}")
    return frozenset(found)


def _encode(secret: str, claims: dict[str, Any], ttl_s: float) -> str:
    now = int(time.time())
    return jwt.encode({"iss": ISSUER, "iat": now, "exp": now + int(ttl_s)} | claims, secret, algorithm=ALGORITHM)


def user_token(secret: str, user_id: str, role: Literal["admin", "user"], ttl_s: float) -> str:
    return _encode(secret, {"typ": "user", "sub": user_id, "role": role}, ttl_s)


def new_member_id() -> str:
    """A member token's subject: an identity nobody can choose, so nobody can claim another's notifications."""
    return MEMBER_PREFIX + secrets.token_urlsafe(16)


def member_token(
    secret: str,
    room_id: str,
    participant: str,
    role: Literal["moderator", "speaker"],
    ttl_s: float,
    permissions: frozenset[Permission] | None = None,
    *,
    member_id: str | None = None,
    generation: int = 0,
) -> str:
    """A token for `participant` (a display name) in `room_id`; its subject is `member_id`, a fresh one by default."""
    granted = ROLE_PERMISSIONS[role] if permissions is None else permissions
    claims = {
        "typ": "member",
        "sub": member_id or new_member_id(),
        "name": participant,
        "room": room_id,
        "gen": generation,
        "role": role,
        "permissions": sorted(granted),
    }
    return _encode(secret, claims, ttl_s)


def read_token(secret: str, token: str, expected: Literal["user", "member"]) -> Principal:
    """Verifies signature, expiry, issuer and type; raises InvalidToken with a reason."""
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], issuer=ISSUER, options={"require": ["exp", "iat", "sub"]}
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("token expired") from exc
    except jwt.PyJWTError as exc:
        raise InvalidToken("invalid token") from exc
    if claims.get("typ") != expected:
        raise InvalidToken(f"not a {expected} token")
    subject, role = str(claims["sub"]), claims.get("role")
    if expected == "user":
        if role not in ("admin", "user"):
            raise InvalidToken("invalid role")
        return Principal(kind="user", subject=subject, role=role, permissions=ROLE_PERMISSIONS[role])
    room, name, generation = claims.get("room"), claims.get("name"), claims.get("gen", 0)
    if role not in ("moderator", "speaker") or not isinstance(room, str):
        raise InvalidToken("invalid member token")
    if not isinstance(generation, int) or isinstance(generation, bool) or generation < 0:
        raise InvalidToken("invalid member token generation")
    return Principal(
        kind="member",
        subject=subject,
        role=role,
        permissions=parse_permissions(claims.get("permissions")),
        room_id=room,
        name=name if isinstance(name, str) else None,
        generation=generation,
    )
