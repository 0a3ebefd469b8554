"""What the webhook delivery workflow and its activity are handed: one event, where it goes, how long to try.

These are Temporal payloads (pydantic data converter); the wire format and the signature are in `webhooks`.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from callrec.domain.webhooks import WebhookEndpoint, WebhookEvent

THREE_DAYS_S = 3 * 24 * 3600.0


class WebhookAttempt(BaseModel):
    """One POST of one event to one endpoint (the activity's input; every retry gets the same)."""

    endpoint: WebhookEndpoint
    event: WebhookEvent


class WebhookDelivery(BaseModel):
    """One event for every endpoint that wants it (the workflow's input)."""

    endpoints: list[WebhookEndpoint]
    event: WebhookEvent
    give_up_after_s: float = Field(default=THREE_DAYS_S, gt=0, description="stop retrying an endpoint after this")
    retry_initial_s: float = Field(default=1.0, gt=0, description="first retry interval; doubles up to 60 s")
