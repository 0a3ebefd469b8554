"""Outbound webhooks: which events go where, and how each delivery is signed.

A delivery is `POST {url}` with the JSON body `{event, creationDate, data}` and the headers
`X-Timestamp` (ms since the epoch), `X-Signature` (lowercase hex HMAC-SHA256 with the endpoint's secret
over `<X-Timestamp>.<body>`) and `X-Idempotency-Key` (the same for every retry of one event, so a
receiver drops repeats).

As OpenVidu Meet 3.8/3.9 sends them: the events (`recordingStarted` with status `starting`,
`recordingUpdated` for `active` and `ending`, `recordingEnded` for every final status, `failed` and
`aborted` included; `meetingStarted` / `meetingEnded` with the room), the headers, and the body serialized
the way Meet's receivers re-serialize it to check the signature (`JSON.stringify`: no spaces, UTF-8 as is,
integral numbers without `.0`). Meet keys the HMAC with its API key; callrec keys it with each endpoint's
own secret (a receiver never holds a credential to the API).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, Literal

from pydantic import BaseModel, Field

from callrec.domain.notifications import NotificationInfo, NotificationPost
from callrec.domain.recording import Recording, RecordingStatus
from callrec.domain.recording_info import recording_info

EventName = Literal[
    "recordingStarted",
    "recordingUpdated",
    "recordingEnded",
    "recordingFailed",  # no longer sent (failed recordings end with `recordingEnded`); still a valid filter
    "recordingShared",
    "notificationCreated",
    "meetingStarted",
    "meetingEnded",
]
# The event a recording's change of status is announced by (Meet's); any other status: "recordingUpdated".
STATUS_EVENTS: dict[RecordingStatus, EventName] = {
    RecordingStatus.STARTING: "recordingStarted",
    RecordingStatus.COMPLETE: "recordingEnded",
    RecordingStatus.LIMIT_REACHED: "recordingEnded",
    RecordingStatus.ABORTED: "recordingEnded",
    RecordingStatus.FAILED: "recordingEnded",
}
TIMESTAMP_HEADER = "X-Timestamp"
SIGNATURE_HEADER = "X-Signature"
IDEMPOTENCY_HEADER = "X-Idempotency-Key"


class WebhookEndpoint(BaseModel):
    url: str = Field(description="where events are POSTed")
    secret: str = Field(min_length=16, description="signs each delivery")
    events: list[EventName] | None = Field(default=None, description="only these events; all when absent")

    def wants(self, event: EventName, status: str | None = None) -> bool:
        """Whether this endpoint gets `event` (of a recording with `status`). An endpoint that lists the old
        `recordingFailed` still gets failed recordings: their `recordingEnded`."""
        if self.events is None or event in self.events:
            return True
        return event == "recordingEnded" and status == RecordingStatus.FAILED.value and "recordingFailed" in self.events


class WebhookEvent(BaseModel):
    event: EventName
    creation_date: int  # ms since the epoch
    data: dict[str, Any]
    idempotency_key: str

    def status(self) -> str | None:
        """The recording's status, for a recording event."""
        status = self.data.get("status")
        return status if isinstance(status, str) else None

    def body(self) -> bytes:
        """The JSON body, byte for byte what `JSON.stringify` makes of it once parsed (Meet's receivers sign that)."""
        envelope = {"event": self.event, "creationDate": self.creation_date, "data": self.data}
        return json.dumps(_js_numbers(envelope), separators=(",", ":"), ensure_ascii=False).encode()


def _js_numbers(value: Any) -> Any:
    """Integral floats as integers (`2.0` -> `2`), as JavaScript writes them."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {key: _js_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_js_numbers(item) for item in value]
    return value


def status_event(status: RecordingStatus) -> EventName:
    return STATUS_EVENTS.get(status, "recordingUpdated")


def recording_payload(recording: Recording) -> dict[str, object]:
    """A recording as webhook receivers get it (an event's `data`): the REST API's shape (`recording_info`)."""
    return recording_info(recording)


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
