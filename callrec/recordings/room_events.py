"""Room webhook events as OpenVidu Meet sends them: `meetingStarted` when a room's call starts, `meetingEnded`
when it ends (ended, or its room closed or deleted), each with the room as `data`.

They are emitted where calls start and end (`calls.Calls`) (and `recordingShared` where the API shares a recording to
the chat, `offers.py`), straight into the delivery workflow of each endpoint
that wants them (`WebhookEndpointWorkflow`), which signs and retries them like the recording events. Like Meet's,
the emission is in the background of the request: if the workflow service cannot be reached at that moment, the
event is logged and lost (the call itself is not refused for it).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from temporalio.client import Client

from callrec.activities.webhooks import enqueue
from callrec.domain.settings import Settings
from callrec.domain.webhooks import WebhookEvent
from callrec.storage.rows import RoomRow

log = logging.getLogger(__name__)

RoomEvent = Literal["meetingStarted", "meetingEnded"]


def room_payload(room: RoomRow) -> dict[str, Any]:
    """A room as the Meet-style API shows it to anyone (the REST view without its secrets) and webhooks send it."""
    return {
        "roomId": room.room_id,
        "roomName": room.room_name,
        "creationDate": room.creation_date,
        "status": room.status,
        "lobby": {"enabled": bool(room.lobby)},
        "config": {"recording": room.config},
    }


async def announce(
    settings: Settings,
    temporal: Client,
    event: RoomEvent,
    room: dict[str, Any],
    key: str,
    now_ms: int,
) -> None:
    """Hands `event` about `room` (its Meet-style view) to the delivery of each endpoint that wants it. `key`
    tells this occurrence apart (the call's start date): each endpoint's workflow takes the same occurrence
    once."""
    room_id = room.get("roomId")
    webhook = WebhookEvent(
        event=event, creation_date=now_ms, data=room, idempotency_key=f"room:{room_id}:{event}:{key}"
    )
    await emit(settings, temporal, webhook)


async def emit(settings: Settings, temporal: Client, webhook: WebhookEvent) -> None:
    """Hands an event the API raises (not a workflow) to the delivery workflow of each endpoint that wants it; each
    takes the same idempotency key once. Failures are logged, not raised: the request goes on without its webhook."""
    urls = list(dict.fromkeys(e.url for e in settings.webhooks if e.wants(webhook.event, webhook.status())))
    try:
        for url in urls:
            await enqueue(temporal, settings.task_queue, url, webhook)
    except Exception:  # background: what raised it goes on without its webhook
        log.warning("webhook %s (%s) not emitted", webhook.event, webhook.idempotency_key, exc_info=True)
