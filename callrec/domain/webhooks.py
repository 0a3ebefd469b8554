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

EventName = Literal[
    "recordingStarted",
    "recordingUpdated",
    "recordingEnded",
    "recordingFailed",
    "recordingShared",
    "notificationCreated",
]
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


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
