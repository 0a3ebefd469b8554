"""Recording media streamed from the object store, with `Range` support; never the whole file in memory."""

from __future__ import annotations

from quart import Blueprint, Response, request

from callrec.api import errors
from callrec.api.meet.access import authorized_recording
from callrec.api.offload import PRESIGNED_REDIRECT, offloaded
from callrec.api.operations import (
    FILE_HEADERS,
    MEDIA_TYPES,
    RANGE,
    RECORDING_SECRET,
    Answer,
    Who,
    declare,
    error,
    header_doc,
)
from callrec.api.ranges import RangeNotSatisfiable, parse_range
from callrec.api.services import services
from callrec.api.validation import check_range_header
from callrec.domain.recording import RecordingStatus
from callrec.domain.tokens import Permission
from callrec.media.sniff import CONTENT_TYPES
from callrec.storage.objects import ObjectNotFound
from callrec.storage.rows import RecordingRow

blueprint = Blueprint("media", __name__)

# Any finished recording with a file: a failed one keeps what a lost recorder stored (`recorder_lost`), an aborted one
# what was recorded until an operator cancelled it (`operator_cancelled`).
PLAYABLE = tuple(status.value for status in RecordingStatus if not status.in_progress)


def playable_key(row: RecordingRow) -> str:
    """The object key of a recording that can be played; 409 while it cannot."""
    if row.status not in PLAYABLE or row.object_key is None:
        raise errors.recording_not_complete(row.recording_id, row.status)
    return row.object_key


async def stored_media(row: RecordingRow) -> tuple[str, int]:
    """Object key and size of a playable recording's file; 409 while not playable, 404 if the file is gone."""
    key = playable_key(row)
    try:
        return key, (await services().store.stat(key)).size
    except ObjectNotFound as exc:
        raise errors.ApiError(404, "Recording Error", f"Recording '{row.recording_id}' media is missing") from exc


def content_type(key: str) -> str:
    return CONTENT_TYPES.get(key.rsplit(".", 1)[-1], "application/octet-stream")


@blueprint.get("/recordings/<recording_id>/media")
@declare(
    "getRecordingMedia",
    "Get a recording's media",
    tag="Recordings",
    security=Who.EVERYONE_OR_SECRET,
    responses={
        200: Answer(
            "The whole file",
            binary=MEDIA_TYPES,
            headers={"Accept-Ranges": header_doc("`bytes`.")} | FILE_HEADERS,
        ),
        206: Answer(
            "The requested range",
            binary=MEDIA_TYPES,
            headers={
                "Accept-Ranges": header_doc("`bytes`."),
                "Content-Range": header_doc("`bytes start-end/size`."),
            }
            | FILE_HEADERS,
        ),
        302: PRESIGNED_REDIRECT,
        400: error("`recordingSecret` is not one of the recording's secrets"),
        403: error(),
        404: error("No such recording, or its media is missing"),
        409: error("The recording is not complete"),
        416: error("Range not satisfiable", **{"Content-Range": header_doc("`bytes */size`.")}),
        422: error("Malformed recording id, or a `Range` other than `bytes=start-` / `bytes=start-end`"),
    },
    parameters=(RECORDING_SECRET, RANGE),
)
async def get_media(recording_id: str) -> Response:
    svc = services()
    check_range_header(request.headers.get("Range"))  # Meet's rule, before the recording is looked up
    row = await authorized_recording(recording_id, Permission.PLAY)
    key, size = await stored_media(row)
    try:
        byte_range = parse_range(request.headers.get("Range"), size)
    except RangeNotSatisfiable as exc:
        raise errors.range_not_satisfiable(recording_id, size) from exc

    headers = {
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, max-age=3600",
        "Content-Type": content_type(key),
    }
    if (handed := await offloaded(key, headers)) is not None:  # CALLREC_MEDIA_OFFLOAD: a proxy or S3 sends the bytes
        return handed
    if byte_range is None:
        body = svc.store.read(key)
        status, length = 200, size
    else:
        body = svc.store.read(key, byte_range.start, byte_range.length)
        status, length = 206, byte_range.length
        headers["Content-Range"] = f"bytes {byte_range.start}-{byte_range.end}/{size}"
    headers["Content-Length"] = str(length)
    response = Response(body, status=status, headers=headers)
    response.timeout = None  # a long download is not a hung handler
    return response
