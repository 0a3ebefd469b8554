"""JSON shapes of rooms, calls and recordings as the Meet-style API returns them."""

from __future__ import annotations

from typing import Any

from callrec.api.baseurl import public_base
from callrec.domain import talk_render
from callrec.domain.recording import Recording
from callrec.domain.recording_info import recording_info
from callrec.recordings.room_events import room_payload
from callrec.storage.rows import CallRow, ChatMessageRow, NotificationRow, RecordingRow, RoomRow


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


def notification_view(row: NotificationRow, facts: talk_render.NotificationFacts) -> dict[str, Any]:
    """Shaped like a Nextcloud notification (Talk's subjects, rich parameters and actions), with callrec's own keys
    beside (`subject` is Talk's subject id; `subjectRich`, `messageRich` and their parameters what clients show)."""
    talk = talk_render.nextcloud_notification(facts, public_base())
    return {
        "notificationId": row.notification_id,
        "app": "spreed",
        "user": row.user,
        "moderators": row.moderators,
        "timestamp": row.timestamp,
        "datetime": talk["datetime"],
        "objectType": talk["object_type"],
        "objectId": row.room_id,
        "roomId": row.room_id,
        "recordingId": row.recording_id,
        "subject": row.subject,
        "message": talk["message"],
        "subjectRich": talk["subjectRich"],
        "messageRich": talk["messageRich"],
        "messageRichParameters": talk["messageRichParameters"],
        "fileId": row.file_id,
        "actions": [
            action | {"body": {"timestamp": row.timestamp} | ({"fileId": row.file_id} if action["primary"] else {})}
            for action in talk["actions"]
        ],
    }


def chat_message_view(row: ChatMessageRow, viewer_id: str | None = None) -> dict[str, Any]:
    """Shaped like a Talk chat message, as the caller `viewer_id` (a user id, a member id, `api-key`) reads it: a
    system message about a recording ("You started the video recording" for its actor), or a shared recording
    (`{file}`, messageType record-video or record-audio)."""
    name = row.parameters.get("actorName")
    name = name if isinstance(name, str) else None
    found = row.parameters.get("metaData")
    meta: dict[str, Any] = found if isinstance(found, dict) else {}
    shared = isinstance(found, dict)
    extra = {k: v for k, v in row.parameters.items() if k not in ("metaData", "actorName")}
    if isinstance(file := extra.get("file"), dict):
        extra["file"] = file | {"size": str(file.get("size")), "path": file.get("name"), "preview-available": "no"}
    actor = {} if shared else {"actor": talk_render.actor_parameter(row.actor_type, row.actor_id, name)}
    return {
        "id": row.message_id,
        "token": row.room_id,
        "actorType": row.actor_type,
        "actorId": row.actor_id,
        "actorDisplayName": name if name is not None else (row.actor_id if row.actor_type == "users" else ""),
        "timestamp": row.timestamp,
        "messageType": meta.get("messageType", "comment") if shared else "system",
        "systemMessage": "" if shared else row.message,
        "message": talk_render.chat_text(row.message, by_viewer=viewer_id == row.actor_id),
        "messageParameters": actor | extra,
    }
