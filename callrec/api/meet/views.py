"""JSON shapes of rooms, calls and recordings as the Meet-style API returns them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from callrec.api.ocs import OCS_BASE
from callrec.domain.notifications import FILE_STORED
from callrec.domain.recording import Recording
from callrec.domain.recording_info import recording_info
from callrec.recordings.room_events import room_payload
from callrec.storage.rows import CallRow, ChatMessageRow, NotificationRow, RecordingRow, RoomRow

# How Talk clients show each system message ({actor} and {file} are messageParameters).
CHAT_TEXT = {
    "recording_started": "{actor} started the video recording",
    "audio_recording_started": "{actor} started the audio recording",
    "recording_stopped": "{actor} stopped the video recording",
    "audio_recording_stopped": "{actor} stopped the audio recording",
    "recording_failed": "The recording failed. Please contact your administrator.",
    "file_shared": "{file}",
}


def room_view(room: RoomRow, *, with_secrets: bool = False) -> dict[str, Any]:
    view = room_payload(room)
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


def recording_view(recording: Recording | RecordingRow) -> dict[str, Any]:
    """A recording as the Meet-style API shows it (a catalog row is read as the `Recording` it holds): Meet's
    `MeetRecordingInfo`, a field without a value left out (see `callrec.domain.recording_info`)."""
    return recording_info(as_recording(recording))


def as_recording(recording: Recording | RecordingRow) -> Recording:
    return recording if isinstance(recording, Recording) else Recording.model_validate(recording)


def notification_view(row: NotificationRow) -> dict[str, Any]:
    """Shaped like a Nextcloud notification; a stored recording's carries the share and dismiss actions."""
    actions: list[dict[str, Any]] = []
    if row.subject == FILE_STORED:
        base = f"{OCS_BASE}/recording/{row.room_id}"
        actions = [
            {
                "label": "Share to chat",
                "link": f"{base}/share-chat",
                "type": "POST",
                "primary": True,
                "body": {"timestamp": row.timestamp, "fileId": row.file_id},
            },
            {
                "label": "Dismiss",
                "link": f"{base}/notification",
                "type": "DELETE",
                "primary": False,
                "body": {"timestamp": row.timestamp},
            },
        ]
    return {
        "notificationId": row.notification_id,
        "app": "spreed",
        "user": row.user,
        "moderators": row.moderators,
        "timestamp": row.timestamp,
        "datetime": datetime.fromtimestamp(row.timestamp, UTC).isoformat(),
        "objectType": "recording",
        "objectId": row.room_id,
        "roomId": row.room_id,
        "recordingId": row.recording_id,
        "subject": row.subject,
        "message": row.message,
        "fileId": row.file_id,
        "actions": actions,
    }


def chat_message_view(row: ChatMessageRow) -> dict[str, Any]:
    """Shaped like a Talk chat message; a shared recording has messageType record-video or record-audio."""
    meta = row.parameters.get("metaData")
    message_type = meta.get("messageType", "comment") if isinstance(meta, dict) else "system"
    return {
        "id": row.message_id,
        "token": row.room_id,
        "actorType": row.actor_type,
        "actorId": row.actor_id,
        "actorDisplayName": row.actor_id,
        "timestamp": row.timestamp,
        "messageType": message_type,
        "systemMessage": row.message,
        "message": CHAT_TEXT.get(row.message, row.message),
        "messageParameters": {"actor": {"type": row.actor_type, "id": row.actor_id, "name": row.actor_id}}
        | {k: v for k, v in row.parameters.items() if k != "metaData"},
    }
