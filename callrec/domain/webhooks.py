"""Outbound webhooks: which events go where, and how each delivery is signed.

A delivery is `POST {url}` with the JSON body `{event, creationDate, data}` and the headers
`X-Timestamp` (ms since the epoch), `X-Signature` (lowercase hex HMAC-SHA256 with the endpoint's secret
over `<X-Timestamp>.<body>`) and `X-Idempotency-Key` (the same for every retry of one event, so a
receiver drops repeats).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, Literal

from pydantic import BaseModel, Field

from callrec.domain.notifications import NotificationInfo, NotificationPost
from callrec.domain.recording import Recording, RecordingStatus

EventName = Literal[
    "recordingStarted",
    "recordingUpdated",
    "recordingEnded",
    "recordingFailed",
    "recordingShared",
    "notificationCreated",
]
# The event a recording's change of status is announced by; any other status: "recordingUpdated".
STATUS_EVENTS: dict[RecordingStatus, EventName] = {
    RecordingStatus.ACTIVE: "recordingStarted",
    RecordingStatus.COMPLETE: "recordingEnded",
    RecordingStatus.LIMIT_REACHED: "recordingEnded",
    RecordingStatus.ABORTED: "recordingEnded",
    RecordingStatus.FAILED: "recordingFailed",
}
TIMESTAMP_HEADER = "X-Timestamp"
SIGNATURE_HEADER = "X-Signature"
IDEMPOTENCY_HEADER = "X-Idempotency-Key"


class WebhookEndpoint(BaseModel):
    url: str = Field(description="where events are POSTed")
    secret: str = Field(min_length=16, description="signs each delivery")
    events: list[EventName] | None = Field(default=None, description="only these events; all when absent")

    def wants(self, event: EventName) -> bool:
        return self.events is None or event in self.events


class WebhookEvent(BaseModel):
    event: EventName
    creation_date: int  # ms since the epoch
    data: dict[str, Any]
    idempotency_key: str

    def body(self) -> bytes:
        return json.dumps({"event": self.event, "creationDate": self.creation_date, "data": self.data}).encode()


def status_event(status: RecordingStatus) -> EventName:
    return STATUS_EVENTS.get(status, "recordingUpdated")


def recording_payload(recording: Recording) -> dict[str, object]:
    """A recording as webhook receivers get it (an event's `data`): the REST API's fields."""
    return {
        "recordingId": recording.recording_id,
        "roomId": recording.room_id,
        "roomName": recording.room_name,
        "status": recording.status.value,
        "startDate": recording.start_date,
        "endDate": recording.end_date,
        "duration": recording.duration,
        "size": recording.size,
        "filename": recording.filename,
        "errorCode": recording.error_code,
        "error": recording.error,
        "details": recording.details,
    }


def notification_payload(post: NotificationPost, info: NotificationInfo) -> dict[str, object]:
    """A notification as webhook receivers get it (the `notificationCreated` event's `data`)."""
    return {
        "notificationId": info.notification_id,
        "timestamp": info.timestamp,
        "subject": post.subject,
        "message": post.message,
        "user": post.user,
        "roomId": post.room_id,
        "recordingId": post.recording_id,
        "fileId": post.file_id,
    }


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
