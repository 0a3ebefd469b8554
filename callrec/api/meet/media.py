"""Recording media streamed from the object store, with `Range` support; never the whole file in memory."""

from __future__ import annotations

from quart import Blueprint, Response, request

from callrec.api import errors
from callrec.api.conditional import file_validators
from callrec.api.file_responses import file_body
from callrec.api.meet.access import authorized_recording
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
from callrec.storage.objects import ObjectInfo, ObjectNotFound
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
    info = await stored_object(row)
    return info.key, info.size


async def stored_object(row: RecordingRow) -> ObjectInfo:
    """What the store says of a playable recording's file (key, size, stored time); 409 / 404 as `stored_media`."""
    key = playable_key(row)
    try:
        return await services().store.stat(key)
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
            headers={"Accept-Ranges": header_doc("`bytes`.")} | FILE_HEADERS | VALIDATOR_HEADERS,
        ),
        206: Answer(
            "The requested range",
            binary=MEDIA_TYPES,
            headers={
                "Accept-Ranges": header_doc("`bytes`."),
                "Content-Range": header_doc("`bytes start-end/size`."),
            }
            | FILE_HEADERS
            | VALIDATOR_HEADERS,
        ),
        **CONDITIONAL_ANSWERS,
        302: PRESIGNED_REDIRECT,
        400: error("`recordingSecret` is not one of the recording's secrets"),
        403: error(),
        404: error("No such recording, or its media is missing"),
        409: error("The recording is not complete"),
        416: error("Range not satisfiable", **{"Content-Range": header_doc("`bytes */size`.")}),
        422: error("Malformed recording id, or a `Range` other than `bytes=start-` / `bytes=start-end`"),
    },
    parameters=(RECORDING_SECRET, RANGE, *CONDITIONAL_PARAMETERS),
    head="headRecordingMedia",
)
async def get_media(recording_id: str) -> Response:
    svc = services()
    check_range_header(request.headers.get("Range"))  # Meet's rule, before the recording is looked up
    row = await authorized_recording(recording_id, Permission.PLAY)
    stored = await stored_object(row)
    key, size = stored.key, stored.size
    validators = file_validators(row.sha256, size, stored.modified, row.end_date)
    decision = precondition(validators)  # RFC 9110 13.2.2: after access, before the range (304 wins over 416)
    if decision.status == 304:
        return not_modified(validators)
    try:
        byte_range = parse_range(request.headers.get("Range") if decision.use_range else None, size)
    except RangeNotSatisfiable as exc:
        raise errors.range_not_satisfiable(recording_id, size) from exc

    headers = {
        "Accept-Ranges": "bytes",
        "Cache-Control": CACHE_CONTROL,
        "Content-Type": content_type(key),
        **validators.headers(),
    }
    if (handed := await offloaded(key, headers)) is not None:  # CALLREC_MEDIA_OFFLOAD: a proxy or S3 sends the bytes
        return handed
    if byte_range is None:
        body = NO_BODY if head() else await file_body(svc.store, key)
        status, length = 200, size
    else:
        body = NO_BODY if head() else await file_body(svc.store, key, byte_range.start, byte_range.length)
        status, length = 206, byte_range.length
        headers["Content-Range"] = f"bytes {byte_range.start}-{byte_range.end}/{size}"
    headers["Content-Length"] = str(length)
    response = Response(body, status=status, headers=headers)
    response.timeout = None  # a long download is not a hung handler
    return response
