"""Webhook activities: emit an event (hand it to its endpoints' delivery workflows) and deliver it to one endpoint.

Endpoint secrets live only here, in the worker's configuration: the delivery workflows and their activity
are handed endpoint URLs (see `webhook_delivery`), so no secret is ever written into workflow history.

`emit_webhook` hands the event, with signal-with-start, to the WebhookEndpointWorkflow of each endpoint that
wants it (`enqueue`); the endpoint workflow takes an event once, so a retried emit delivers nothing twice.
`deliver_webhook` POSTs the event to one URL, signed with that endpoint's secret, and is retried by Temporal
until it is taken: 2xx is delivered. Unreachable, timed out, 408, 429 and 5xx raise a plain (retryable) error.
Any other answer is final (`WebhookRejected`, non-retryable): a 4xx the receiver means, or a 3xx, since a
redirected POST may lose its body and its signature binds the body, not the URL it ends up at. So is a URL no
longer configured.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from callrec.domain.webhook_delivery import (
    ENQUEUE_SIGNAL,
    EndpointInput,
    WebhookAttempt,
    endpoint_summary,
    endpoint_workflow_id,
)
from callrec.domain.webhooks import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    EventName,
    WebhookEndpoint,
    WebhookEvent,
    signature,
)
from callrec.metrics import WEBHOOK_DELIVERIES

REJECTED = "WebhookRejected"
# The delivery workflows' types, started by name so this module need not import the workflow modules.
ENDPOINT_WORKFLOW = "WebhookEndpointWorkflow"
DELIVERY_WORKFLOW = "WebhookDeliveryWorkflow"  # retired: nothing starts it any more
# Below the workflow's 30 s start-to-close timeout, so a slow receiver fails the attempt with a clear message.
REQUEST_TIMEOUT_S = 20.0
RETRYABLE_STATUS = {408, 429}
USER_AGENT = "callrec-webhooks"


def _excerpt(response: httpx.Response) -> str:
    return " ".join(response.text[:200].split())


async def enqueue(client: Client, task_queue: str, url: str, event: WebhookEvent) -> str:
    """Hands `event` to the delivery workflow of the endpoint at `url` (signal-with-start: starts it if it is not
    running); returns that workflow's id. The workflow takes an event once, so handing it again does nothing."""
    workflow_id = endpoint_workflow_id(task_queue, url)
    await client.start_workflow(
        ENDPOINT_WORKFLOW,
        EndpointInput(url=url),
        id=workflow_id,
        task_queue=task_queue,
        start_signal=ENQUEUE_SIGNAL,
        start_signal_args=[event],
        static_summary=endpoint_summary(url),
    )
    return workflow_id


class WebhookActivities:
    """The configured endpoints (with their secrets), and how to reach them and Temporal.

    `client` and `task_queue` are for `emit_webhook` only: the client that signals (and starts) the endpoints'
    delivery workflows, and the task queue they run on (by default, the emitting activity's own).
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        endpoints: list[WebhookEndpoint],
        client: Client | None = None,
        task_queue: str | None = None,
    ) -> None:
        self.http = http
        self.endpoints = list(endpoints)
        self.client = client
        self.task_queue = task_queue

    def urls_for(self, event: EventName, status: str | None = None) -> list[str]:
        """The URLs of the endpoints that want `event` (of a recording with `status`), each once, in configuration
        order."""
        return list(dict.fromkeys(e.url for e in self.endpoints if e.wants(event, status)))

    def endpoint_for(self, url: str, event: EventName, status: str | None = None) -> WebhookEndpoint | None:
        """The endpoint `url` is, or None if it is not configured.

        Of several with that URL, the first that wants `event` (the one `urls_for` picked it for), else
        the first: the URL is still configured, though it no longer asks for this event.
        """
        matches = [e for e in self.endpoints if e.url == url]
        return next((e for e in matches if e.wants(event, status)), matches[0] if matches else None)

    @activity.defn
    async def emit_webhook(self, event: WebhookEvent) -> int:
        """Hands `event` to the delivery workflow of every endpoint that wants it; returns how many that is.

        Idempotent: each endpoint workflow takes an event once (by its idempotency key), so a retry (or a second
        emit of the same event) delivers nothing twice. No endpoint wants it: 0, and nothing signalled.
        """
        urls = self.urls_for(event.event, event.status())
        if not urls:
            return 0
        if self.client is None:
            raise RuntimeError("WebhookActivities has no Temporal client to hand webhook deliveries to")
        task_queue = self.task_queue or activity.info().task_queue
        for url in urls:
            workflow_id = await enqueue(self.client, task_queue, url, event)
            activity.logger.info("webhook %s %s: handed to %s", event.event, event.idempotency_key, workflow_id)
        return len(urls)

    @activity.defn
    async def deliver_webhook(self, attempt: WebhookAttempt) -> None:
        """One attempt; each is counted by outcome (`callrec_webhook_deliveries_total`)."""
        try:
            await self._deliver(attempt)
        except ApplicationError as exc:
            WEBHOOK_DELIVERIES.labels("rejected" if exc.non_retryable else "retryable").inc()
            raise
        except Exception:
            WEBHOOK_DELIVERIES.labels("retryable").inc()
            raise
        WEBHOOK_DELIVERIES.labels("delivered").inc()

    async def _deliver(self, attempt: WebhookAttempt) -> None:
        url, event = attempt.url, attempt.event
        endpoint = self.endpoint_for(url, event.event, event.status())
        if endpoint is None:
            raise ApplicationError(f"webhook {url}: endpoint no longer configured", type=REJECTED, non_retryable=True)
        body = event.body()
        timestamp = str(time.time_ns() // 1_000_000)  # this attempt's, so the receiver can refuse stale replays
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(endpoint.secret, timestamp, body),
            IDEMPOTENCY_HEADER: event.idempotency_key,
        }
        try:
            response = await self.http.post(
                url, content=body, headers=headers, timeout=REQUEST_TIMEOUT_S, follow_redirects=False
            )
        except httpx.TimeoutException as exc:
            raise RuntimeError(f"webhook {url} timed out: {exc!r}") from exc
        except httpx.HTTPError as exc:
            raise RuntimeError(f"webhook {url} unreachable: {exc!r}") from exc
        status = response.status_code
        if response.is_success:
            activity.logger.info("webhook %s %s delivered to %s (%d)", event.event, event.idempotency_key, url, status)
            return
        if status >= 500 or status in RETRYABLE_STATUS:
            raise RuntimeError(f"webhook {url} answered {status}: {_excerpt(response)}")
        raise ApplicationError(
            f"webhook {url} answered {status}: {_excerpt(response)}",
            status,
            type=REJECTED,
            non_retryable=True,
        )


def webhook_activities(
    http: httpx.AsyncClient,
    endpoints: list[WebhookEndpoint],
    client: Client | None = None,
    task_queue: str | None = None,
) -> list[Callable[..., Any]]:
    """Every webhook activity, for the worker: `emit_webhook` and `deliver_webhook`."""
    activities = WebhookActivities(http, endpoints, client, task_queue)
    return [activities.emit_webhook, activities.deliver_webhook]
