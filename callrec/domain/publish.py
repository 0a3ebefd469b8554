"""WHIP publish tokens: one room, one participant, an expiry; HS256 with CALLREC_PUBLISH_SECRET.

The API mints them (`POST /api/v1/rooms/{roomId}/publish-token`); the built-in recorder checks them before it
takes an offer. The secret is their own (never the access-token secret), so a publish token is no access token
and an access token never publishes.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import jwt
from pydantic import BaseModel, ConfigDict, Field

ALGORITHM = "HS256"
AUDIENCE = "callrec:publish"
Role = Literal["moderator", "speaker"]


class PublishTokenError(Exception):
    """A publish token that does not publish: `status` 401 (missing, malformed, expired, bad signature) or 403
    (valid, but for another room)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Publisher:
    room_id: str
    participant_id: str
    name: str
    role: Role
    expires_at: int  # epoch seconds
    generation: int = 0  # the room's token generation when minted: rotating the room's secrets revokes it


def new_participant_id() -> str:
    return f"pub_{secrets.token_urlsafe(12)}"


def mint(secret: str, publisher: Publisher) -> str:
    claims = {
        "aud": AUDIENCE,
        "room": publisher.room_id,
        "sub": publisher.participant_id,
        "name": publisher.name,
        "role": publisher.role,
        "exp": publisher.expires_at,
        "gen": publisher.generation,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def bearer(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer …` header; 401 without one."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise PublishTokenError(401, "send the publish token as 'Authorization: Bearer <token>'")
    return token.strip()


def verify(secret: str, token: str, room_id: str, *, expired_ok: bool = False) -> Publisher:
    """The publisher a token names, if it is valid and for `room_id`. `expired_ok`: past its expiry too (a token
    only starts sessions until then; ending one's own session or reading the room's status works later)."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            options={"require": ["exp", "aud", "sub"], "verify_exp": not expired_ok},
        )
    except jwt.ExpiredSignatureError:
        raise PublishTokenError(401, "the publish token has expired: ask for a new one") from None
    except jwt.InvalidTokenError:
        raise PublishTokenError(401, "not a valid publish token") from None
    room, sub, name, role = claims.get("room"), claims.get("sub"), claims.get("name"), claims.get("role")
    generation = claims.get("gen", 0)
    if not isinstance(generation, int) or not (
        isinstance(room, str) and isinstance(sub, str) and isinstance(name, str) and role in ("moderator", "speaker")
    ):
        raise PublishTokenError(401, "not a valid publish token")
    if room != room_id:
        raise PublishTokenError(403, "this publish token is for another room")
    return Publisher(room, sub, name, role, int(claims["exp"]), generation)


class IceServer(BaseModel):
    """A TURN (or STUN) server with credentials, handed to publishers as RFC 9725 §4.6 says."""

    model_config = ConfigDict(extra="forbid")
    url: str = Field(pattern=r"^(stuns?|turns?):[^\s<>\x00-\x1f]+$")
    username: str = Field(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f]+$")
    credential: str = Field(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f]+$")


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def ice_server_links(servers: Sequence[str | IceServer]) -> list[str]:
    """RFC 9725 `Link` header values naming the ICE servers a publisher should use (with TURN credentials)."""
    links = []
    for server in servers:
        if isinstance(server, str):
            links.append(f'<{server}>; rel="ice-server"')
        else:
            links.append(f'<{server.url}>; rel="ice-server"; username={_quoted(server.username)}; '
                         f'credential={_quoted(server.credential)}; credential-type="password"')  # fmt: skip
    return links
