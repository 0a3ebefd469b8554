"""`POST /recording/backend`: the recording server's `started` / `stopped` / `failed` callbacks.

callrec's own recorder also sends `progress` (`{token, recordingId, duration, bytes}`) while it records.

Authenticated by Talk-Recording-Random + Talk-Recording-Checksum (HMAC over random + body); each
callback becomes a signal to the recording's workflow. callrec's own recorder adds `recordingId` so a
late callback can never reach a newer recording of the same room.

Errors are answered as Talk answers them, `{"type": "error", "error": {"code", "message"}}` in the OCS envelope:
403 `invalid_request` (not authenticated), 400 `unknown_type`, 404 `no_such_room`; callrec's own cases add 400
`invalid_request` (a body without a token), 403 `replay`, 410 `room_closed`, 429 `too_many_requests` and 503
`unavailable`. As in Talk, `stopped` and `failed` set the room's status (0, 5) even when no recording of the room is
in progress; `started` is taken only while its recording is starting.

The checksum is verified before anything else: a correctly signed request is never throttled; bad ones
count against their address (`bruteforce.Throttle`). An accepted random is remembered in the catalog (shared
by every API process) for `CALLREC_RECORDER_NONCE_TTL_S`, and a request that repeats it is refused
(`replay`), so a captured request cannot be played again. A request answered 503 (try again) forgets its
random: Talk's recording server retries with the same headers.
"""

from __future__ import annotations

import json
import time
from typing import Any, cast

from pydantic import ValidationError
from quart import Blueprint, Response, request

from callrec.api import schemas
from callrec.api.ocs import OCS_BASE, ocs_response
from callrec.api.operations import Answer, Who, declare
from callrec.api.services import Services, services
from callrec.domain import signing, talk_room
from callrec.domain.notifications import Actor
from callrec.domain.participants import Participant
from callrec.domain.pool import RecorderReport
from callrec.domain.recording import (
    RecorderFailed,
    RecorderProgress,
    RecorderStarted,
    RecorderStopped,
)
from callrec.logs import bind_recording
from callrec.logs.http import routine
from callrec.recordings.errors import RecordingNotFound, ServiceUnavailable
from callrec.recordings.service import Callback
from callrec.recordings.talk_status import room_status_callback
from callrec.storage.pool import RecorderPool

blueprint = Blueprint("recorder_backend", __name__, url_prefix=OCS_BASE)
CALLBACKS: tuple[Callback, ...] = ("started", "stopped", "failed", "progress")
PUBLISHER = "publisher"  # callrec's recorder: a WHIP publisher joined or left the call
RECORDER = "recorder"  # callrec's recorder: its registration with the pool
REGISTRATION_FRESH_S = 30.0  # a registration signed longer ago than this (or ahead: clocks) is refused


async def remember_random(svc: Services, random: str) -> bool:
    """False if `random` was accepted before (within the nonce TTL): the request is a replay."""
    return await svc.catalog.remember_nonce(random, int(time.time()), svc.settings.recorder_nonce_ttl_s)


def callback_error(status: int, code: str, message: str) -> Response:
    return ocs_response({"type": "error", "error": {"code": code, "message": message}}, status, "")


def actor_of(payload: dict[str, object]) -> Actor | None:
    """The callback's `actor: {type, id}`, as Talk reads it (both strings, or no actor)."""
    actor = payload.get("actor")
    if not isinstance(actor, dict):
        return None
    kind, found = actor.get("type"), actor.get("id")
    if not isinstance(kind, str) or not isinstance(found, str) or not kind or not found:
        return None
    return Actor(type=kind[:32], id=found[:128])


def actor_id(payload: dict[str, object]) -> str | None:
    actor = actor_of(payload)
    return actor.id if actor is not None else None


def argument(kind: Callback, payload: dict[str, object]) -> object:
    """What the callback carries, as the workflow takes it."""
    if kind == "stopped":
        return RecorderStopped(actor=actor_id(payload))
    if kind == "progress":
        return progress_of(payload)
    if kind == "failed":
        reason = payload.get("reason")
        return RecorderFailed(reason=reason) if isinstance(reason, str) and reason else RecorderFailed()
    return RecorderStarted()


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def progress_of(payload: dict[str, object]) -> RecorderProgress:
    duration, size = payload.get("duration"), payload.get("bytes")
    finite = isinstance(duration, int | float) and not isinstance(duration, bool) and 0 <= duration < 1e9
    return RecorderProgress(
        duration_s=float(duration) if finite else None,  # type: ignore[arg-type]
        bytes=_count(size),
        segments=_count(payload.get("segments")),
        part=_count(payload.get("part")),
    )


async def publisher_presence(svc: Services, room_id: str, payload: dict[str, object]) -> Response:
    """`{token, participant: {id, name, role}, generation, state: joined | left}`: the call's presence follows real
    media. The recorder repeats `joined` while the publisher publishes (a lease: presence comes back after a `PUT` or
    `DELETE` of the call, or a lost callback); 410 to a closed room, or a token of before a secrets rotation, makes
    it end the session."""
    state = payload.get("state")
    try:
        participant = Participant.model_validate(payload.get("participant"))
    except ValidationError:
        return callback_error(400, "invalid_request", "`participant` is not {id, name, role}.")
    if participant.id is None or state not in ("joined", "left"):
        return callback_error(400, "invalid_request", "`participant.id` and `state` (joined or left) are required.")
    if state == "joined":
        room = await svc.catalog.get_room(room_id)
        generation = payload.get("generation", 0)
        if room is None or room.status == "closed" or generation != room.token_generation:
            # Closed, or its secrets rotated since the token was minted: the recorder ends the session.
            return callback_error(410, "room_closed", "The room is closed, or the publish token was revoked.")
        await svc.calls.join(room_id, participant)
    else:
        await svc.calls.leave(room_id, participant.id)
    return ocs_response([])


def _parse(raw: bytes) -> tuple[str, Any] | None:
    """`{type, <type>: payload}` as (type, payload); None when the body is not that."""
    try:
        message = json.loads(raw)
        kind = message["type"]
        return (kind, message[kind]) if isinstance(kind, str) else None
    except (ValueError, KeyError, TypeError, RecursionError):
        return None


async def register_recorder(svc: Services, payload: object) -> Response:
    """A pool recorder's registration (`RecorderReport`). It repeats every few seconds and says only what is true
    now, so instead of keeping its random for the replay window (a row per recorder every 5 s), the API takes it
    only while its signed `sentAt` is within REGISTRATION_FRESH_S: played again later, it is refused as stale."""
    routine()  # every few seconds from each recorder: a debug line unless it is refused
    try:
        report = RecorderReport.model_validate(payload)
    except ValidationError:
        return callback_error(400, "invalid_request", "The registration is not a recorder report.")
    now_ms = int(time.time() * 1000)
    if abs(now_ms - report.sentAt) > REGISTRATION_FRESH_S * 1000:
        return callback_error(403, "invalid_request", "The registration is stale (`sentAt`).")
    await RecorderPool(svc.catalog).register(report, now_ms)
    return ocs_response([])


@blueprint.post("/recording/backend")
@declare(
    "recorderCallback",
    "A recording server's callback",
    tag="Recorder",
    security=Who.NONE,
    responses={
        200: Answer("Taken", schemas.Ocs),
        400: Answer("Not a known `type` (`unknown_type`), or no `token` (`invalid_request`)", schemas.Ocs),
        403: Answer(
            "Bad `Talk-Recording-Checksum` (`invalid_request`), or a `Talk-Recording-Random` already used (`replay`)",
            schemas.Ocs,
        ),
        404: Answer("No such room, or `started` with no recording starting (`no_such_room`)", schemas.Ocs),
        410: Answer("`publisher` joined a closed room, or with a revoked token (`room_closed`)", schemas.Ocs),
        429: Answer(
            "Too many refused requests from this address (`too_many_requests`); signed ones still pass", schemas.Ocs
        ),
        503: Answer("Temporal is not available; send it again (`unavailable`, `Retry-After`)", schemas.Ocs),
    },
    notes="Signed with `Talk-Recording-Random` and `Talk-Recording-Checksum` (HMAC-SHA256 of random + body with "
    "the recording secret; the random 32 to 256 ASCII characters, fresh for every request). The body is "
    "`{type, <type>: {token, recordingId?, ...}}` with type `started`, `stopped`, `failed` or `progress`; "
    "callrec's recorder also sends `publisher` (`{token, participant: {id, name, role}, generation, state: "
    "joined|left}`; 410 when the room is closed or the token's generation revoked) and `recorder` (its "
    "registration with the pool: `{id, url, taskQueue, capacity, state, recordings, rooms}`, no token).",
)
async def backend() -> Response:
    svc = services()
    raw: bytes = await request.body
    random = request.headers.get(signing.RANDOM_HEADER)
    signed = signing.verify(
        svc.settings.require_recording_secret(), random, request.headers.get(signing.CHECKSUM_HEADER), raw
    )
    message = _parse(raw) if signed else None
    # A recorder's registration is fresh by its signed `sentAt`, not by a kept random (see `register_recorder`).
    registration = message is not None and message[0] == RECORDER
    replay = signed and not registration and random is not None and not await remember_random(svc, random)
    if not signed or replay:
        if (wait_s := svc.throttle.refused(request.remote_addr or "unknown")) is not None:
            response = callback_error(429, "too_many_requests", "Too many refused requests from this address.")
            response.headers["Retry-After"] = str(wait_s)
            return response
        if replay:
            return callback_error(403, "replay", "This Talk-Recording-Random was used before.")
        return callback_error(403, "invalid_request", "The request could not be authenticated.")
    assert random is not None  # verified
    kind, payload = message if message is not None else (None, None)
    if registration:
        return await register_recorder(svc, payload)
    if kind not in (*CALLBACKS, PUBLISHER):
        return callback_error(400, "unknown_type", f"The given type {json.dumps(kind)[:100]} is not supported.")
    if not isinstance(payload, dict) or not isinstance(token := payload.get("token"), str):
        return callback_error(400, "invalid_request", "The callback carries no `token`.")
    if kind == PUBLISHER:
        if await svc.catalog.get_room(token) is None:
            return callback_error(404, "no_such_room", "Room not found.")
        return await publisher_presence(svc, token, payload)
    recording_id = payload.get("recordingId")
    callback = cast(Callback, kind)
    try:  # a recording's row says its room exists (a room goes only after its recordings): one read, not two
        row = await svc.recordings.for_callback(token, recording_id if isinstance(recording_id, str) else None)
        bind_recording(row.recording_id, token)
        await svc.recordings.recorder_callback(row, callback, argument(callback, payload), actor_of(payload))
    except RecordingNotFound:
        if await svc.catalog.get_room(token) is None:
            return callback_error(404, "no_such_room", "Room not found.")
        if callback in ("stopped", "failed") and recording_id is None:
            # Talk's: the room's status follows the recording server, whatever it was (nothing to signal)
            status = talk_room.NONE if callback == "stopped" else talk_room.FAILED
            await room_status_callback(svc.catalog, token, status, actor_of(payload))
            return ocs_response(None)
        return callback_error(404, "no_such_room", "Room not found.")
    except ServiceUnavailable as exc:  # never a 404: that would make the recorder give up a live recording
        await svc.catalog.forget_nonce(random)  # its retry may carry the same random
        response = callback_error(503, "unavailable", str(exc))
        response.headers["Retry-After"] = str(exc.retry_after_s)
        return response
    return ocs_response(None)


@blueprint.post("/recording/<token>/store")
@declare(
    "recorderUpload",
    "A recording server's upload of the file",
    tag="Recorder",
    security=Who.NONE,
    responses={
        200: Answer("Stored (or a retry of a file already stored)", schemas.Ocs),
        400: Answer(
            "Refused: `size`, `owner_invalid`, `owner_participant`, `owner_permission`, `empty_file`, `file_name`, "
            "`file_mimetype`, `file_extension`, `invalid_file`",
            schemas.Ocs,
        ),
        401: Answer(
            "Bad `Talk-Recording-Checksum` (`checksum`), or a `Talk-Recording-Random` already used (`replay`)",
            schemas.Ocs,
        ),
        404: Answer("No such room (`room`) or no recording to store (`recording`)", schemas.Ocs),
        408: Answer("The body stalled or took too long (`timeout`)", schemas.Ocs),
        409: Answer("The recording already has another file (`recording`)", schemas.Ocs),
        429: Answer("Too many refused requests from this address (`bruteforce`); signed ones still pass", schemas.Ocs),
        503: Answer(
            "Temporal (`unavailable`), too many uploads at once (`busy`), both with `Retry-After`; or the object "
            "store (`storage`) is down",
            schemas.Ocs,
        ),
    },
    notes="multipart/form-data with `owner`, `file` and (callrec's recorder) `recordingId`; other fields are "
    "ignored, more than a few parts are refused. Signed with `Talk-Recording-Random` and "
    "`Talk-Recording-Checksum` (HMAC-SHA256 of random + the room's token); a random is accepted once. The body "
    "is counted as it streams: beyond `CALLREC_MAX_UPLOAD_BYTES` it is refused (`size`) at once. Any refusal "
    "carries `Connection: close`.",
)
async def store(token: str) -> Response:
    """Declared here, served by `upload.StoreUpload` ahead of Quart, which streams the body into the store."""
    raise RuntimeError("POST .../store is served by StoreUpload, which the app factory installs")
