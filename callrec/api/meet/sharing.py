"""Shareable recording URLs carrying the recording's public or private secret (see `access`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from quart import Blueprint, Response, jsonify

from callrec.api import schemas
from callrec.api.meet.access import SECRET_PARAM, permitted_recording
from callrec.api.operations import (
    Answer,
    Who,
    declare,
    error,
)
from callrec.api.services import services
from callrec.domain.tokens import Permission

blueprint = Blueprint("sharing", __name__)


class UrlQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    privateAccess: bool = False


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
    """A URL to play the recording: with its public secret, or with `privateAccess=true` its private one."""
    private = query.privateAccess
    row = await permitted_recording(recording_id, Permission.PLAY)
    settings = services().settings
    base = (settings.public_url or settings.api_url).rstrip("/")
    secret = row.private_secret if private else row.public_secret
    return jsonify({"url": f"{base}/api/v1/recordings/{recording_id}/media?{SECRET_PARAM}={secret}"})
