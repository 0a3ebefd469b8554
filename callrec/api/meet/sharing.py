"""Shareable recording URLs: the recording's player page (`/recording/{id}?secret=...`, the path OpenVidu Meet's
app serves) with its public or private secret (see `access`).

The public variant is refused while the room's anonymous recording access is off (callrec's `publicAccess`,
Meet's `access.anonymous.recording.enabled`): its secret would let nobody in. The private one always works and
needs a signed-in caller when used.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from quart import Blueprint, Response, jsonify

from callrec.api import schemas
from callrec.api.baseurl import public_base
from callrec.api.errors import ApiError
from callrec.api.meet.access import permitted_recording
from callrec.api.operations import (
    Answer,
    Who,
    declare,
    error,
)
from callrec.api.services import services
from callrec.api.validation import TrueOrFalse
from callrec.domain.layout import RecordingConfig
from callrec.domain.tokens import Permission

PAGE_SECRET_PARAM = "secret"  # the player page's parameter, as Meet's URL names it


def anonymous_access_disabled(room_id: str) -> ApiError:
    return ApiError(403, "Recording Error", f"Anonymous access to recordings is disabled for room '{room_id}'")


blueprint = Blueprint("sharing", __name__)


class UrlQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    privateAccess: TrueOrFalse = False  # Meet: `true` in any case, anything else is false


@blueprint.get("/recordings/<recording_id>/url")
@declare(
    "getRecordingUrl",
    "Get a shareable URL of a recording",
    tag="Recordings",
    security=Who.EVERYONE,
    responses={
        200: Answer("The URL", schemas.RecordingUrl),
        403: error(),
        404: error("No such recording"),
        422: error(),
    },
    query=UrlQuery,
)
async def recording_url(recording_id: str, query: UrlQuery) -> Response:
    """The recording's player page: with its public secret, or with `privateAccess=true` its private one."""
    private = query.privateAccess
    row = await permitted_recording(recording_id, Permission.PLAY)
    if not private:
        room = await services().catalog.get_room(row.room_id)
        if room is None or not RecordingConfig.model_validate(room.config).publicAccess:
            raise anonymous_access_disabled(row.room_id)
    secret = row.private_secret if private else row.public_secret
    return jsonify({"url": f"{public_base()}/recording/{recording_id}?{PAGE_SECRET_PARAM}={secret}"})
