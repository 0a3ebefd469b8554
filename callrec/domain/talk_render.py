"""Chat system messages and notifications as Talk renders them (`Chat/Parser/SystemMessage.php`,
`Notification/Notifier.php`): the text each viewer reads, and the rich parameters clients draw it from."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from callrec.domain.notifications import FILE_STORED, RECORDING_FAILED, STORE_FAILED

# system message -> (what others read, what its actor reads)
CHAT_TEXT = {
    "recording_started": ("{actor} started the video recording", "You started the video recording"),
    "audio_recording_started": ("{actor} started the audio recording", "You started the audio recording"),
    "recording_stopped": ("{actor} stopped the video recording", "You stopped the video recording"),
    "audio_recording_stopped": ("{actor} stopped the audio recording", "You stopped the audio recording"),
    "recording_failed": ("The recording failed", "The recording failed"),
    "file_shared": ("{file}", "{file}"),
}
GUEST = "Guest"


def actor_parameter(actor_type: str, actor_id: str, name: str | None) -> dict[str, str]:
    """Talk's rich `actor`: a user by id and display name; a guest as `guest/<id>`, named "<name> (guest)", or
    "Guest" without a name."""
    if actor_type == "users":
        return {"type": "user", "id": actor_id, "name": name or actor_id, "mention-id": actor_id}
    guest_id = f"guest/{actor_id}"
    return {"type": "guest", "id": guest_id, "name": f"{name} (guest)" if name else GUEST, "mention-id": guest_id}


def chat_text(message: str, *, by_viewer: bool) -> str:
    others, you = CHAT_TEXT.get(message, (message, message))
    return you if by_viewer else others


def call_parameter(room_id: str, room_name: str) -> dict[str, str]:
    return {"type": "call", "id": room_id, "name": room_name, "call-type": "public"}


# subject -> (object type, rich subject, rich message)
NOTIFICATIONS = {
    FILE_STORED: (
        "recording",
        "Call recording now available",
        "The recording for the call in {call} was uploaded to {file}.",
    ),
    STORE_FAILED: (
        "recording_information",
        "Failed to upload call recording",
        "The recording server failed to upload recording of call {call}. Please reach out to the administration.",
    ),
    # callrec's own (Talk has none): the recording itself failed; its message is the workflow's, saying why
    RECORDING_FAILED: ("recording_information", "Call recording failed", ""),
}  # fmt: skip


def parsed(rich: str, parameters: dict[str, dict[str, Any]]) -> str:
    """Nextcloud's plain text of a rich string: each `{key}` as its parameter's name (a file as its path)."""

    def one(match: re.Match[str]) -> str:
        found = parameters.get(match[1])
        if found is None:
            return match[0]
        return str(found.get("path") or found.get("name")) if found.get("type") == "file" else str(found["name"])

    return re.sub(r"\{([a-z-]+)\}", one, rich)


def notification_texts(
    subject: str, call: dict[str, str], file: dict[str, Any] | None, message: str = ""
) -> tuple[str, str, str, dict[str, dict[str, Any]]]:
    """(object type, rich subject, rich message, message parameters) of a notification (`message`: its own text,
    for a subject Talk has no words for)."""
    object_type, rich_subject, rich_message = NOTIFICATIONS.get(subject, ("recording_information", subject, ""))
    rich_message = rich_message or message.replace("{", "(").replace("}", ")")
    parameters: dict[str, dict[str, Any]] = {"call": call}
    if "{file}" in rich_message and file is not None:
        parameters["file"] = file
    return object_type, rich_subject, rich_message, parameters


OCS_RECORDING = "/ocs/v2.php/apps/spreed/api/v1/recording"


@dataclass(frozen=True)
class NotificationFacts:
    notification_id: int
    user: str | None
    timestamp: int
    subject: str
    room_id: str
    room_name: str
    recording_id: str | None
    file_id: int | None
    filename: str | None
    message: str = ""  # the text it was created with


def nextcloud_notification(n: NotificationFacts, base_url: str) -> dict[str, Any]:
    """The notification as Nextcloud's notifications API shows it to Talk clients (`base_url`: the public base of
    absolute links, `scheme://host[/path]`)."""
    call = call_parameter(n.room_id, n.room_name)
    file = None
    if n.file_id is not None and n.recording_id is not None and n.filename is not None:
        link = f"{base_url}/api/v1/recordings/{n.recording_id}/media"
        file = {"type": "file", "id": str(n.file_id), "name": n.filename, "path": n.filename, "link": link}
    object_type, rich_subject, rich_message, parameters = notification_texts(n.subject, call, file, n.message)
    actions: list[dict[str, Any]] = []
    if n.subject == FILE_STORED:
        base = f"{base_url}{OCS_RECORDING}/{n.room_id}"
        actions = [
            {
                "label": "Share to chat",
                "link": f"{base}/share-chat?fileId={n.file_id}&timestamp={n.timestamp}",
                "type": "POST",
                "primary": True,
            },
            {
                "label": "Dismiss notification",
                "link": f"{base}/notification?timestamp={n.timestamp}",
                "type": "DELETE",
                "primary": False,
            },
        ]
    return {
        "notification_id": n.notification_id,
        "app": "spreed",
        "user": n.user or "",
        "datetime": datetime.fromtimestamp(n.timestamp, UTC).isoformat(),
        "object_type": object_type,
        "object_id": n.room_id,
        "subject": rich_subject,
        "message": parsed(rich_message, parameters),
        "link": "",
        "subjectRich": rich_subject,
        "subjectRichParameters": {},
        "messageRich": rich_message,
        "messageRichParameters": parameters,
        "icon": "",
        "shouldNotify": True,
        "actions": actions,
    }
