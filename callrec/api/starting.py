"""Starting a recording, shared by the Meet-style and the Talk-style APIs.

The catalog row is the reservation: its insert fails when the room already has a recording in
progress (a partial unique index), which holds across API processes. Then the workflow starts.
"""

from __future__ import annotations

from temporalio.client import WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError

from callrec.activities.files import EXTENSIONS
from callrec.api import errors
from callrec.api.ids import new_recording_id
from callrec.api.rooms import now_ms
from callrec.api.services import services
from callrec.domain.layout import RecordingConfig
from callrec.domain.participants import Participant
from callrec.domain.recording import (
    ROOM_ID_ATTR,
    STATUS_ATTR,
    RecordingKind,
    RecordingState,
    RecordingStatus,
    StartRecordingInput,
)
from callrec.storage.catalog import CallRow, RecordingRow, RoomRow
from callrec.workflows.recording import RecordingWorkflow


async def begin_recording(
    room: RoomRow, config: RecordingConfig, kind: RecordingKind, call: CallRow
) -> WorkflowHandle[RecordingWorkflow, RecordingState]:
    """Reserves the room and starts its recording workflow; raises RecordingInProgress when taken."""
    svc = services()
    settings = svc.settings
    recording_id = new_recording_id(room.room_id)
    row = RecordingRow(
        recording_id=recording_id,
        room_id=room.room_id,
        room_name=room.room_name,
        status=RecordingStatus.STARTING.value,
        layout=config.layout.value,
        encoding=config.model_dump(mode="json", by_alias=True)["encoding"],
        filename=f"{recording_id}.{EXTENSIONS[kind]}",
        kind=kind.value,
        creation_date=now_ms(),
    )
    await svc.catalog.add_recording(row)

    workflow_input = StartRecordingInput(
        recording_id=recording_id,
        room_id=room.room_id,
        room_name=room.room_name,
        kind=kind,
        layout=config.layout,
        encoding=config.encoding,
        participants=[Participant.model_validate(p) for p in call.participants],
        start_timeout_s=settings.start_timeout_s,
        upload_timeout_s=settings.upload_timeout_s,
        max_duration_s=settings.max_duration_s,
    )
    try:
        handle = await svc.temporal.start_workflow(
            RecordingWorkflow.run,
            workflow_input,
            id=recording_id,
            task_queue=settings.task_queue,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(ROOM_ID_ATTR, room.room_id),
                    SearchAttributePair(STATUS_ATTR, RecordingStatus.STARTING.value),
                ]
            ),
        )
    except RPCError as exc:
        await svc.catalog.project_recording(
            recording_id,
            1,
            {"status": RecordingStatus.FAILED.value, "error": "workflow_unavailable", "details": exc.message},
        )
        raise errors.temporal_unavailable() from exc

    return handle
