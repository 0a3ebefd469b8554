"""`POST /recording/backend`: the recording server's `started` / `stopped` / `failed` callbacks.

callrec's own recorder also sends `progress` (`{token, recordingId, duration, bytes}`) while it records.

Authenticated by Talk-Recording-Random + Talk-Recording-Checksum (HMAC over random + body); each
callback becomes a signal to the recording's workflow. callrec's own recorder adds `recordingId` so a
late callback can never reach a newer recording of the same room.
"""

from __future__ import annotations

import json

from quart import Blueprint, Response, request
from temporalio.service import RPCError

from callrec.api.ocs import OCS_BASE, ocs_response
from callrec.api.services import services
from callrec.domain import signing
from callrec.domain.recording import (
    RecorderFailed,
    RecorderProgress,
    RecorderStarted,
    RecorderStopped,
    RecordingStatus,
)
from callrec.storage.catalog import RecordingRow
from callrec.workflows.recording import RecordingWorkflow

blueprint = Blueprint("recorder_backend", __name__, url_prefix=OCS_BASE)
CALLBACKS = ("started", "stopped", "failed", "progress")


async def find_recording(room_id: str, recording_id: object) -> RecordingRow | None:
    catalog = services().catalog
    if isinstance(recording_id, str):
        row = await catalog.get_recording(recording_id)
        return row if row is not None and row.room_id == room_id else None
    return await catalog.recording_in_progress(room_id)


def actor_id(payload: dict[str, object]) -> str | None:
    actor = payload.get("actor")
    found = actor.get("id") if isinstance(actor, dict) else None
    return found if isinstance(found, str) and found else None


def progress_of(payload: dict[str, object]) -> RecorderProgress:
    duration, size = payload.get("duration"), payload.get("bytes")
    return RecorderProgress(
        duration_s=float(duration) if isinstance(duration, int | float) and not isinstance(duration, bool) else None,
        bytes=size if isinstance(size, int) and not isinstance(size, bool) else None,
    )


@blueprint.post("/recording/backend")
async def backend() -> Response:
    svc = services()
    address = request.remote_addr or "unknown"
    if (wait_s := svc.throttle.retry_after(address)) is not None:
        response = ocs_response({"error": "bruteforce"}, 429, "Too Many Requests")
        response.headers["Retry-After"] = str(wait_s)
        return response
    raw: bytes = await request.body
    if not signing.verify(
        svc.settings.require_recording_secret(),
        request.headers.get(signing.RANDOM_HEADER),
        request.headers.get(signing.CHECKSUM_HEADER),
        raw,
    ):
        svc.throttle.failed(address)
        return ocs_response({"error": "checksum"}, 403, "Forbidden")
    try:
        message = json.loads(raw)
        kind = message["type"]
        payload = message[kind]
        token = payload["token"]
    except (ValueError, KeyError, TypeError):
        return ocs_response({"error": "body"}, 400, "Bad Request")
    if kind not in CALLBACKS or not isinstance(token, str) or not isinstance(payload, dict):
        return ocs_response({"error": "type"}, 400, "Bad Request")
    if await svc.catalog.get_room(token) is None:
        return ocs_response({"error": "room"}, 404, "Not Found")
    row = await find_recording(token, payload.get("recordingId"))
    if row is None:
        return ocs_response({"error": "recording"}, 404, "Not Found")

    if kind == "started" and row.status != RecordingStatus.STARTING.value:
        return ocs_response({"error": "recording"}, 404, "Not Found")  # only a starting room can start
    handle = svc.temporal.get_workflow_handle_for(RecordingWorkflow.run, row.recording_id)
    try:
        if kind == "started":
            await handle.signal(RecordingWorkflow.recorder_started, RecorderStarted())
        elif kind == "stopped":
            await handle.signal(RecordingWorkflow.recorder_stopped, RecorderStopped(actor=actor_id(payload)))
        elif kind == "progress":
            await handle.signal(RecordingWorkflow.recorder_progress, progress_of(payload))
        else:
            reason = payload.get("reason")
            failed = RecorderFailed(reason=reason) if isinstance(reason, str) and reason else RecorderFailed()
            await handle.signal(RecordingWorkflow.recorder_failed, failed)
    except RPCError:
        return ocs_response({"error": "recording"}, 404, "Not Found")
    return ocs_response([])
