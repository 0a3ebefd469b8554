"""Keeps the catalog's recordings projection in step with the workflow."""

from __future__ import annotations

from temporalio import activity

from callrec.domain.recording import ErrorCode, RecordingState, RecordingStatus
from callrec.domain.talk_room import ProjectionWithRoom, StatusChange
from callrec.metrics import RECORDINGS_ENDED, RECORDINGS_STARTED
from callrec.storage.catalog import Catalog
from callrec.storage.talk_rooms import TalkRooms


def projection_fields(state: RecordingState) -> dict[str, object]:
    """The catalog columns a workflow state sets (everything but `seq`)."""
    fields: dict[str, object] = {
        "status": state.status.value,
        "start_date": state.start_date,
        "end_date": state.end_date,
        "error_code": state.error_code,
        "error": state.error,
        "details": state.details,
    }
    if state.file is not None:
        f = state.file
        fields |= {
            "object_key": f.object_key,
            "filename": f.filename,
            "size": f.size,
            "sha256": f.sha256,
            "duration": f.duration,
            "media": {
                "width": f.width,
                "height": f.height,
                "videoCodec": f.video_codec,
                "audioCodec": f.audio_codec,
                "gaps": [gap.model_dump() for gap in state.gaps],
            },
        }
    if state.encoding_used is not None:
        fields["encoding"] = state.encoding_used
    return fields


def count_outcome(before: str, state: RecordingState, egress: str) -> None:
    """Counts a recording that this write moved to active or to an end: once, since a retry or a second writer
    of the same state finds the row moved already (and a replay runs no activity)."""
    status = state.status
    if status.value == before:
        return
    if status == RecordingStatus.ACTIVE:
        RECORDINGS_STARTED.labels(egress).inc()
    elif not status.in_progress:
        RECORDINGS_ENDED.labels(status.value, error_name(state.error_code), egress).inc()


def error_name(code: int | None) -> str:
    """The errorCode as a label: its name (`start_timeout`), the number for one callrec does not name, or ""."""
    if code is None:
        return ""
    try:
        return ErrorCode(code).name.lower()
    except ValueError:
        return str(code)


class CatalogActivities:
    def __init__(self, catalog: Catalog, egress: str = "builtin") -> None:
        self.catalog = catalog
        self.egress = egress  # the worker's CALLREC_EGRESS: who records what it runs (a metrics label)

    @activity.defn
    async def project_recording(self, state: RecordingState) -> None:
        before = await self.catalog.apply_projection(state.recording_id, state.seq, projection_fields(state))
        if before is None:
            activity.logger.info("projection %s #%d not applied (stale or row gone)", state.recording_id, state.seq)
            return
        count_outcome(before, state, self.egress)

    @activity.defn
    async def project_with_room(self, write: ProjectionWithRoom) -> None:
        """`project_recording`, then `set_call_recording`: a terminal status and the room's (each write idempotent,
        so a retry of both lands both)."""
        await self.project_recording(write.state)
        await self.set_call_recording(write.room)

    @activity.defn
    async def set_call_recording(self, change: StatusChange) -> None:
        """The room's Talk status, as the workflow moves it (and the system message the change posts)."""
        await TalkRooms(self.catalog).set_status(change)
