"""A room secret exchanged for a member token: `POST /api/v1/rooms/{roomId}/members/token` and the console's
sign-in with a room link take the same rule."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Literal

from callrec.domain import tokens
from callrec.domain.settings import Settings
from callrec.storage.rows import RoomRow


@dataclass(frozen=True)
class Exchanged:
    token: str
    role: Literal["moderator", "speaker"]
    member_id: str


def role_of(room: RoomRow, secret: str) -> Literal["moderator", "speaker"] | None:
    """The role the room's `secret` gives (compared in constant time), or None when it is not one of its secrets."""
    if hmac.compare_digest(secret.encode(), room.moderator_secret.encode()):
        return "moderator"
    if hmac.compare_digest(secret.encode(), room.speaker_secret.encode()):
        return "speaker"
    return None


def exchange(settings: Settings, room: RoomRow, secret: str, participant: str) -> Exchanged | None:
    """A member token of `room` for `secret` (None when it is not one of the room's; the caller checks the room is
    open)."""
    role = role_of(room, secret)
    if role is None:
        return None
    member_id = tokens.new_member_id()
    token = tokens.member_token(
        settings.token_key,
        room.room_id,
        participant,
        role,
        settings.member_token_ttl_s,
        member_id=member_id,
        generation=room.token_generation,
    )
    return Exchanged(token, role, member_id)
