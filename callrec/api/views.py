"""JSON shapes of rooms, calls and recordings as the Meet-style API returns them."""

from __future__ import annotations

from typing import Any

from callrec.storage.catalog import CallRow, RecordingRow, RoomRow


def room_view(room: RoomRow, *, with_secrets: bool = False) -> dict[str, Any]:
    view: dict[str, Any] = {
        "roomId": room.room_id,
        "roomName": room.room_name,
        "creationDate": room.creation_date,
        "status": room.status,
        "config": {"recording": room.config},
    }
    if with_secrets:
        view |= {"moderatorSecret": room.moderator_secret, "speakerSecret": room.speaker_secret}
    return view


def call_view(call: CallRow) -> dict[str, Any]:
    return {
        "roomId": call.room_id,
        "participants": call.participants,
        "startedDate": call.started_date,
        "updatedDate": call.updated_date,
    }


def recording_view(row: RecordingRow) -> dict[str, Any]:
    return {
        "recordingId": row.recording_id,
        "roomId": row.room_id,
        "roomName": row.room_name,
        "status": row.status,
        "layout": row.layout,
        "encoding": row.encoding,
        "filename": row.filename,
        "startDate": row.start_date,
        "endDate": row.end_date,
        "duration": row.duration,
        "size": row.size,
        "errorCode": row.error_code,
        "error": row.error,
        "details": row.details,
    }
