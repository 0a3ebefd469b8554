"""Keeps the catalog's recordings projection in step with the workflow."""

from __future__ import annotations

from temporalio import activity

from callrec.domain.recording import RecordingState
from callrec.domain.talk_room import StatusChange
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


class CatalogActivities:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    @activity.defn
    async def project_recording(self, state: RecordingState) -> None:
        if not await self.catalog.project_recording(state.recording_id, state.seq, projection_fields(state)):
            activity.logger.info("projection %s #%d not applied (stale or row gone)", state.recording_id, state.seq)

    @activity.defn
    async def set_call_recording(self, change: StatusChange) -> None:
        """The room's Talk status, as the workflow moves it (and the system message the change posts)."""
        await TalkRooms(self.catalog).set_status(change)
