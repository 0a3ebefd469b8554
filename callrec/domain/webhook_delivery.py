"""What the webhook delivery workflows and their activity are handed: events, where they go, how long to try.

These are Temporal payloads (pydantic data converter), so they end up in workflow history. They therefore
carry endpoint URLs only, never an endpoint's secret: the activity that signs a request looks the secret
up in its own configuration (`WebhookActivities`). The wire format and the signature are in `webhooks`.

Events are delivered by one long-lived `WebhookEndpointWorkflow` per endpoint URL (`endpoint_workflow_id`),
fed with signal-with-start. `WebhookDelivery` and `delivery_workflow_id` are the retired one-workflow-per-event
design's, kept for the runs an upgrade finds still running.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from callrec.domain.webhooks import WebhookEvent

THREE_DAYS_S = 3 * 24 * 3600.0
# The endpoint workflow's signal that hands it one event.
ENQUEUE_SIGNAL = "enqueue"
# How many of the latest events' idempotency keys an endpoint workflow remembers (and carries over when it
# continues as new) to take a repeated event once: a retried emit comes within minutes, far fewer events apart.
SEEN_KEYS = 2000
# How many of the latest outcomes it keeps to show (its `status` query).
RECENT_OUTCOMES = 20


def delivery_workflow_id(event: WebhookEvent) -> str:
    """The retired WebhookDeliveryWorkflow's id for delivering `event`."""
    return f"webhook-{event.idempotency_key}"


def endpoint_host(url: str) -> str:
    """The endpoint's host name, as ids and summaries name it (never its path, query or user info)."""
    return urlsplit(url).hostname or "unknown-host"


def endpoint_workflow_id(task_queue: str, url: str) -> str:
    """The id of the workflow delivering to `url`: its host and a short hash of the task queue and URL.

    The URL itself may carry a token in its path or query, so only its host is spelled out. The task queue
    is in the hash because the workers of that queue hold the endpoint's secret: two deployments sharing a
    Temporal namespace each deliver to a URL they both list with their own secret.
    """
    digest = hashlib.sha256(f"{task_queue}\n{url}".encode()).hexdigest()[:12]
    return f"webhooks-endpoint-{endpoint_host(url)}-{digest}"


def endpoint_summary(url: str) -> str:
    """The endpoint workflow's static summary (shown in the Temporal UI)."""
    return f"Webhook deliveries to {endpoint_host(url)}"


def order_key(event: WebhookEvent) -> str:
    """Events with the same key reach an endpoint in the order they were emitted: a recording's, a room's."""
    for field in ("recordingId", "roomId"):
        value = event.data.get(field)
        if isinstance(value, str) and value:
            return f"{field}:{value}"
    return f"event:{event.idempotency_key}"


class WebhookAttempt(BaseModel):
    """One POST of one event to one endpoint URL (the activity's input; every retry gets the same)."""

    url: str
    event: WebhookEvent


class WebhookDelivery(BaseModel):
    """The retired WebhookDeliveryWorkflow's input: one event for the endpoints that want it, each once."""

    urls: list[str]
    event: WebhookEvent
    give_up_after_s: float = Field(default=THREE_DAYS_S, gt=0, description="stop retrying an endpoint after this")
    retry_initial_s: float = Field(default=1.0, gt=0, description="first retry interval; doubles up to 60 s")


class EndpointInput(BaseModel):
    """The WebhookEndpointWorkflow's input: its endpoint and how to deliver there, then what a run hands the next
    when it continues as new (the events not yet delivered, in order, and the keys it has taken)."""

    url: str
    give_up_after_s: float = Field(default=THREE_DAYS_S, gt=0, description="stop retrying an event after this")
    retry_initial_s: float = Field(default=1.0, gt=0, description="first retry interval; doubles up to 60 s")
    max_in_flight: int = Field(default=8, ge=1, description="events delivered at once (each of its own recording)")
    events_per_run: int = Field(default=500, ge=1, description="continue as new after taking this many events")
    max_queued: int = Field(default=1000, ge=1, description="events waiting at most; beyond, new ones are dropped")
    drain_history_limit: int = Field(
        default=20_000,
        ge=1,
        description="history events past which a run about to continue as new stops waiting for its deliveries in "
        "flight: it cancels them and hands them to the next run",
    )
    queue: list[WebhookEvent] = Field(default_factory=list, description="taken, not yet delivered, oldest first")
    seen: list[str] = Field(default_factory=list, description="the latest idempotency keys taken, oldest first")
    outcomes: dict[str, str] = Field(default_factory=dict, description="the latest outcomes by idempotency key")
    delivered: int = Field(default=0, ge=0, description="events delivered since the first run")


class EndpointStatus(BaseModel):
    """What the endpoint workflow is doing (its `status` query; its current details say the same in words)."""

    url_host: str
    pending: int  # taken, not yet delivered nor given up (in flight included)
    in_flight: int
    delivered: int
    outcomes: dict[str, str]  # the latest, by idempotency key: "delivered", "rejected: …", "gave up: …"
