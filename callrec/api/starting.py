"""Starting a recording, shared by the Meet-style and the Talk-style APIs.

The catalog row is the reservation: its insert fails when the room already has a recording in
progress (a partial unique index), which holds across API processes. Then the workflow starts.
"""

from __future__ import annotations

import logging

from temporalio.client import WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError

from callrec.api import errors
from callrec.api.ids import new_recording_id
from callrec.api.rooms import now_ms
from callrec.api.services import services
from callrec.domain.layout import RecordingConfig
from callrec.domain.participants import Participant
from callrec.domain.recording import (
    EXTENSIONS,
    ROOM_ID_ATTR,
    STATUS_ATTR,
    RecordingKind,
    RecordingState,
    RecordingStatus,
    StartRecordingInput,
)
from callrec.storage.catalog import CallRow, RecordingInProgress, RecordingRow, RoomRow
from callrec.workflows.recording import RecordingWorkflow

log = logging.getLogger(__name__)


async def begin_recording(
    room: RoomRow, config: RecordingConfig, kind: RecordingKind, call: CallRow, owner: str
) -> WorkflowHandle[RecordingWorkflow, RecordingState]:
    """Reserves the room and starts its recording workflow; raises RecordingInProgress when taken.

    `owner` (who started it) gets the notifications and may upload its file.
    """
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
        owner=owner,
        participants=call.participants,
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
        owner=owner,
        auto_share_to_chat=config.autoShareToChat,
        share_offer_expiry_s=settings.share_offer_expiry_s,
        recorder_silence_timeout_s=settings.recorder_silence_timeout_s,
        webhooks=bool(settings.webhooks),
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


def auto_start_owner(config: RecordingConfig, before: list[Participant], now: list[Participant]) -> str | None:
    """Who starts the recording by joining, under the room's `autoStart`; None when nobody does."""
    if not config.enabled or config.autoStart == "off":
        return None
    if config.autoStart == "when_first_participant_joins":
        joined = now if not before else []
    else:
        joined = [p for p in now if p.role == "moderator"] if not any(p.role == "moderator" for p in before) else []
    return (joined[0].id or joined[0].name) if joined else None


async def auto_start(room: RoomRow, before: list[Participant], call: CallRow) -> None:
    """Starts a recording when the call's change is the one the room's `autoStart` waits for."""
    config = RecordingConfig.model_validate(room.config)
    now = [Participant.model_validate(p) for p in call.participants]
    owner = auto_start_owner(config, before, now)
    if owner is None:
        return
    try:
        await begin_recording(room, config, RecordingKind.VIDEO, call, owner)
    except RecordingInProgress:
        pass  # someone started one already
    except errors.ApiError as exc:
        log.warning("autoStart of room %s failed: %s", room.room_id, exc.message)
