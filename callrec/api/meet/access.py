"""Finding a recording and deciding whether the caller may use it.

`recordingSecret` on get / media / download: the public secret lets anyone in when the room's
`publicAccess` allows it (else it needs a signed-in caller); the private secret always needs one;
any other value is a 400. Without a secret the caller's own permissions apply.

A room is managed (its config, its members, its deletion) by the API key, an admin user token, or the user who
owns it (created it), as Meet's `authorizeRoomManagement`.
"""

from __future__ import annotations

import hmac

from quart import request

from callrec.api import errors
from callrec.api.auth import ADMINS_ONLY, EVERYONE, forbidden, require
from callrec.api.services import services
from callrec.domain.layout import RecordingConfig
from callrec.domain.tokens import Kind, Permission
from callrec.storage.rows import RecordingRow, RoomRow

SECRET_PARAM = "recordingSecret"


async def get_recording_or_404(recording_id: str) -> RecordingRow:
    return await services().recordings.get(recording_id)


async def managed_room(room_id: str) -> RoomRow:
    """The room, if the caller manages it: the API key, an admin user token, or the user who owns it."""
    who = require(kinds=ADMINS_ONLY)
    room = await services().catalog.get_room(room_id)
    if room is None:
        raise errors.room_not_found(room_id)
    if not who.is_admin and room.owner != who.subject:
        raise forbidden()
    return room


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


async def permitted_recording(
    recording_id: str, permission: Permission, kinds: frozenset[Kind] = EVERYONE
) -> RecordingRow:
    """The recording, if the caller holds `permission` for its room (401/403 otherwise, 404 if unknown)."""
    require(permission, kinds=kinds)
    row = await get_recording_or_404(recording_id)
    require(permission, kinds=kinds, room_id=row.room_id)
    return row


async def authorized_recording(recording_id: str, permission: Permission) -> RecordingRow:
    """The recording, if the caller may use it with `permission` (or holds a secret that lets them)."""
    secret = request.args.get(SECRET_PARAM)
    if not secret:  # an empty one counts as none, as in Meet
        return await permitted_recording(recording_id, permission)
    row = await get_recording_or_404(recording_id)
    if _same(secret, row.public_secret):
        room = await services().catalog.get_room(row.room_id)
        if room is not None and RecordingConfig.model_validate(room.config).publicAccess:
            return row
        require()
        return row
    if _same(secret, row.private_secret):
        require()
        return row
    raise errors.ApiError(400, "Recording Error", f"Secret is not recognized for recording '{recording_id}'")
