"""A stored recording's pictures: its poster (a waveform for an audio-only recording), and the WebVTT track of seek
thumbnails with their sprite. Made by the worker when the recording was stored (`callrec.media.previews`), next to
its file; served with the media's access rules. 404 while the recording is not finished, or has none."""

from __future__ import annotations

from quart import Blueprint, Response, request

from callrec.api import errors
from callrec.api.conditional import Validators, file_validators
from callrec.api.meet.access import SECRET_PARAM, authorized_recording
from callrec.api.meet.caching import (
    CACHE_CONTROL,
    CONDITIONAL_ANSWERS,
    CONDITIONAL_PARAMETERS,
    NO_BODY,
    VALIDATOR_HEADERS,
    head,
    not_modified,
    precondition,
)
from callrec.api.meet.media import PLAYABLE
from callrec.api.operations import FILE_HEADERS, RECORDING_SECRET, Answer, Who, declare, error
from callrec.api.services import services
from callrec.domain.tokens import Permission
from callrec.media.previews import POSTER, SPRITE, THUMBNAILS, WAVEFORM, preview_key, with_secret
from callrec.storage.objects import ObjectInfo, ObjectNotFound

blueprint = Blueprint("previews", __name__)

MAX_TRACK_BYTES = 1 << 20  # a track of at most 100 cues is a few KiB


def _responses(what: str, media_types: tuple[str, ...]) -> dict[int, Answer]:
    return {
        200: Answer(what, binary=media_types, headers=FILE_HEADERS | VALIDATOR_HEADERS),
        **CONDITIONAL_ANSWERS,
        400: error("`recordingSecret` is not one of the recording's secrets"),
        403: error(),
        404: error(f"No such recording, not finished, or it has no {what.lower()}"),
        422: error("Malformed recording id"),
    }


async def _stored(recording_id: str, suffixes: tuple[str, ...]) -> tuple[ObjectInfo, Validators]:
    """The first of `suffixes` stored for the recording, if the caller may play it, and its validators (its
    ETag: the recording's sha256 and which preview)."""
    row = await authorized_recording(recording_id, Permission.PLAY)
    if row.status in PLAYABLE and row.object_key is not None:
        for suffix in suffixes:
            key = preview_key(row.object_key, suffix)
            try:
                info = await services().store.stat(key)
            except ObjectNotFound:
                continue
            return info, file_validators(row.sha256, info.size, info.modified, row.end_date, variant=suffix)
    raise errors.ApiError(404, "Recording Error", f"Recording '{recording_id}' has no {suffixes[0]} (yet)")


async def _image(recording_id: str, suffixes: tuple[str, ...]) -> Response:
    stored, validators = await _stored(recording_id, suffixes)
    if precondition(validators).status == 304:
        return not_modified(validators)
    headers = {
        "Content-Type": "image/png" if stored.key.endswith(".png") else "image/jpeg",
        "Content-Length": str(stored.size),
        "Cache-Control": CACHE_CONTROL,
        **validators.headers(),
    }
    return Response(NO_BODY if head() else services().store.read(stored.key), status=200, headers=headers)


@blueprint.get("/recordings/<recording_id>/poster")
@declare(
    "getRecordingPoster",
    "Get a recording's poster",
    tag="Recordings",
    security=Who.EVERYONE_OR_SECRET,
    responses=_responses(
        "The poster: a frame a few seconds in, or an audio recording's waveform", ("image/jpeg", "image/png")
    ),
    parameters=(RECORDING_SECRET, *CONDITIONAL_PARAMETERS),
    head="headRecordingPoster",
)
async def get_poster(recording_id: str) -> Response:
    return await _image(recording_id, (POSTER, WAVEFORM))


@blueprint.get("/recordings/<recording_id>/thumbnails.jpg")
@declare(
    "getRecordingThumbnailSprite",
    "Get a recording's seek thumbnails",
    tag="Recordings",
    security=Who.EVERYONE_OR_SECRET,
    responses=_responses("The sprite of seek thumbnails the track's cues point into", ("image/jpeg",)),
    parameters=(RECORDING_SECRET, *CONDITIONAL_PARAMETERS),
    head="headRecordingThumbnailSprite",
)
async def get_thumbnail_sprite(recording_id: str) -> Response:
    return await _image(recording_id, (SPRITE,))


@blueprint.get("/recordings/<recording_id>/thumbnails.vtt")
@declare(
    "getRecordingThumbnails",
    "Get a recording's seek thumbnails track",
    tag="Recordings",
    security=Who.EVERYONE_OR_SECRET,
    responses=_responses(
        "A WebVTT track of seek thumbnails: cues back to back over the whole recording, each the relative URL "
        "`thumbnails.jpg#xywh=x,y,w,h` of a tile of the sprite (with the same `recordingSecret` when one was given)",
        ("text/vtt",),
    ),
    parameters=(RECORDING_SECRET, *CONDITIONAL_PARAMETERS),
    head="headRecordingThumbnails",
    notes="For a video player's thumbnail track: `<track kind=\"metadata\">` or the player's own preview option.",
)
async def get_thumbnails(recording_id: str) -> Response:
    stored, validators = await _stored(recording_id, (THUMBNAILS,))
    if stored.size > MAX_TRACK_BYTES:
        raise errors.ApiError(404, "Recording Error", f"Recording '{recording_id}' has no usable thumbnails track")
    if precondition(validators).status == 304:
        return not_modified(validators)
    headers = {"Cache-Control": CACHE_CONTROL, **validators.headers()}
    secret = request.args.get(SECRET_PARAM)
    if head() and not secret:  # the stored track as it is: its size says its length
        headers["Content-Length"] = str(stored.size)
        return Response(NO_BODY, status=200, headers=headers, content_type="text/vtt; charset=utf-8")
    raw = b"".join([chunk async for chunk in services().store.read(stored.key)])
    body = with_secret(raw.decode("utf-8", errors="replace"), secret).encode()
    headers["Content-Length"] = str(len(body))
    return Response(NO_BODY if head() else body, status=200, headers=headers, content_type="text/vtt; charset=utf-8")
