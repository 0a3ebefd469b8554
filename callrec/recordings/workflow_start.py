"""How a recording's workflow is started: its id, task queue, search attributes and summary (what the Temporal UI
lists), and whether an update-with-start request got as far as starting it."""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio.client import WithStartWorkflowOperation
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import TemporalError

from callrec.domain.recording import (
    EGRESS_ATTR,
    LAYOUT_ATTR,
    ROOM_ID_ATTR,
    ROOM_NAME_ATTR,
    STATUS_ATTR,
    RecordingKind,
    RecordingStatus,
    StartRecordingInput,
)


def egress_of(recording: StartRecordingInput) -> str:
    return "upload" if recording.uploaded else (recording.egress or "builtin")


def workflow_summary(recording: StartRecordingInput) -> str:
    """What the Temporal UI shows for the recording at a glance: room, layout, kind, who records it, who started it."""
    kind = "audio" if recording.kind == RecordingKind.AUDIO else f"video, {recording.layout.value}"
    return (
        f"Recording of {recording.room_name!r} ({recording.room_id}): {kind}, recorded by {egress_of(recording)}, "
        f"started by {recording.owner or 'callrec'}"
    )


def start_options(recording: StartRecordingInput, status: RecordingStatus, task_queue: str) -> dict[str, Any]:
    """The keyword arguments of `start_workflow` (and of a `WithStartWorkflowOperation`) for the recording."""
    return {
        "id": recording.recording_id,
        "task_queue": task_queue,
        "search_attributes": TypedSearchAttributes(
            [
                SearchAttributePair(ROOM_ID_ATTR, recording.room_id),
                SearchAttributePair(STATUS_ATTR, status.value),
                SearchAttributePair(ROOM_NAME_ATTR, recording.room_name[:256]),
                SearchAttributePair(LAYOUT_ATTR, recording.layout.value),
                SearchAttributePair(EGRESS_ATTR, egress_of(recording)),
            ]
        ),
        "static_summary": workflow_summary(recording),
    }


async def started(start: WithStartWorkflowOperation[Any, Any]) -> bool:
    """Whether Temporal answered that it started the workflow (called once the request ended, so it has answered)."""
    try:
        await start.workflow_handle()
    except (TemporalError, asyncio.CancelledError):  # the request's own error (raised where it was sent)
        return False
    return True
