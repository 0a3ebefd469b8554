"""Notifications and chat messages about recordings: the payloads the workflow hands its activities.

Subjects and system messages are Talk's, so Talk clients render them as they do for the Talk app.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel

# Notification subjects.
FILE_STORED = "record_file_stored"  # actions: share to chat, dismiss
STORE_FAILED = "record_file_store_fail"
RECORDING_FAILED = "recording_failed"

# How an offer to share a stored recording ended.
OfferEnd = Literal["shared", "dismissed", "expired"]


class Actor(BaseModel):
    """Who did something, as Talk names actors: `users` / `guests` and an id; `name` is the display name (a call
    participant's), when known."""

    type: str = "users"
    id: str
    name: str | None = None


SYSTEM = Actor(type="guests", id="system")
# Talk's actor for what no participant did (a recording server's `failed`, a `started` from someone not in the call).
NO_SESSION = Actor(type="guests", id="failed-to-get-session", name="")


def file_id(recording_id: str) -> int:
    """The integer `fileId` Talk clients send back to share a recording: stable, below 2**48 (safe in JSON)."""
    return int.from_bytes(hashlib.sha256(recording_id.encode()).digest()[:6], "big")


class ChatPost(BaseModel):
    room_id: str
    dedupe_key: str
    actor: Actor
    message: str
    parameters: dict[str, object] = {}


class NotificationPost(BaseModel):
    room_id: str
    recording_id: str
    dedupe_key: str
    user: str | None
    moderators: bool
    subject: str
    message: str
    file_id: int | None = None


class NotificationInfo(BaseModel):
    notification_id: int
    timestamp: int


class CloseOffer(BaseModel):
    recording_id: str
    end: OfferEnd


class ShareToChat(BaseModel):
    room_id: str
    recording_id: str
    actor: Actor


class ShareRequest(BaseModel):
    """`POST /recording/{token}/share-chat`: names the offer by its notification's timestamp and the file id."""

    actor: Actor
    timestamp: int
    file_id: int


class ShareResult(BaseModel):
    message_id: int


class DismissRequest(BaseModel):
    timestamp: int
