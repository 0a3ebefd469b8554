"""What the webhook delivery workflow and its activity are handed: one event, where it goes, how long to try.

These are Temporal payloads (pydantic data converter), so they end up in workflow history. They therefore
carry endpoint URLs only, never an endpoint's secret: the activity that signs a request looks the secret
up in its own configuration (`WebhookActivities`). The wire format and the signature are in `webhooks`.
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from temporalio.common import WorkflowIDReusePolicy

from callrec.domain.webhooks import WebhookEvent

THREE_DAYS_S = 3 * 24 * 3600.0
# With `delivery_workflow_id`: a second start of one event raises WorkflowAlreadyStartedError, whether the
# first is still running or has closed (until the namespace's retention drops it; receivers dedup on
# X-Idempotency-Key beyond that).
DELIVERY_ID_REUSE_POLICY = WorkflowIDReusePolicy.REJECT_DUPLICATE


def delivery_workflow_id(event: WebhookEvent) -> str:
    """The workflow id for delivering `event`: the same for the same event, so Temporal starts it once."""
    return f"webhook-{event.idempotency_key}"


class WebhookAttempt(BaseModel):
    """One POST of one event to one endpoint URL (the activity's input; every retry gets the same)."""

    url: str
    event: WebhookEvent


class WebhookDelivery(BaseModel):
    """One event for the endpoints that want it (the workflow's input): their URLs, each once."""

    urls: list[str]
    event: WebhookEvent
    give_up_after_s: float = Field(default=THREE_DAYS_S, gt=0, description="stop retrying an endpoint after this")
    retry_initial_s: float = Field(default=1.0, gt=0, description="first retry interval; doubles up to 60 s")
