"""How one event is delivered to one endpoint (`deliver`), and the retired WebhookDeliveryWorkflow.

`deliver` runs the `deliver_webhook` activity, retried with backoff (1 s doubling up to 60 s) until the event is
taken, refused for good (`WebhookRejected`), or `give_up_after_s` has passed, and says which: it never raises
for the endpoint's failure. Each attempt looks the endpoint's secret up in the worker's configuration: the
workflow hands it the URL only.

WebhookDeliveryWorkflow (one workflow per event, id `delivery_workflow_id(event)`) is no longer started by
anything: events now go to one WebhookEndpointWorkflow per endpoint (`webhook_endpoint`). It stays registered on
the worker so that the runs an upgrade finds still running finish, and its saved history keeps replaying.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError
from temporalio.exceptions import TimeoutError as TemporalTimeout

with workflow.unsafe.imports_passed_through():
    from callrec.activities.webhooks import DELIVERY_WORKFLOW, REJECTED, WebhookActivities
    from callrec.domain.webhook_delivery import WebhookAttempt, WebhookDelivery
    from callrec.domain.webhooks import WebhookEvent
    from callrec.workflows.options import last_failure

DELIVERED = "delivered"
ATTEMPT_TIMEOUT = timedelta(seconds=30)
MAX_RETRY_INTERVAL = timedelta(seconds=60)


async def deliver(
    url: str, event: WebhookEvent, give_up_after_s: float, retry_initial_s: float, summary: str | None = None
) -> str:
    """Delivers `event` to `url`: "delivered", "rejected: <why>" or "gave up: <why>". `summary`: the activity's,
    for the Temporal UI."""
    try:
        await workflow.execute_activity_method(
            WebhookActivities.deliver_webhook,
            WebhookAttempt(url=url, event=event),
            start_to_close_timeout=ATTEMPT_TIMEOUT,
            schedule_to_close_timeout=timedelta(seconds=give_up_after_s),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=retry_initial_s),
                backoff_coefficient=2.0,
                maximum_interval=MAX_RETRY_INTERVAL,
                maximum_attempts=0,  # unlimited: the schedule-to-close timeout ends it
                non_retryable_error_types=[REJECTED],
            ),
            summary=summary,
        )
    except ActivityError as err:
        cause = err.cause
        if isinstance(cause, CancelledError):
            raise
        if isinstance(cause, ApplicationError) and cause.type == REJECTED:
            outcome = f"rejected: {cause.message}"
        elif isinstance(cause, TemporalTimeout):
            last = last_failure(cause)
            outcome = f"gave up: not delivered within {give_up_after_s:g} s; last error: {last}"
        else:
            outcome = f"gave up: {last_failure(err)}"
        workflow.logger.warning("webhook %s to %s: %s", event.event, url, outcome)
        return outcome
    return DELIVERED


@workflow.defn(name=DELIVERY_WORKFLOW)
class WebhookDeliveryWorkflow:
    """Retired (nothing starts it since the endpoint workflows): posts one event to every URL in `delivery.urls`,
    concurrently; the result says what became of each URL."""

    @workflow.run
    async def run(self, delivery: WebhookDelivery) -> dict[str, str]:
        """Per URL: "delivered", "rejected: <why>" or "gave up: <why>"."""
        urls = list(dict.fromkeys(delivery.urls))  # each once, should a caller repeat one
        outcomes = await asyncio.gather(
            *(deliver(url, delivery.event, delivery.give_up_after_s, delivery.retry_initial_s) for url in urls)
        )
        return dict(zip(urls, outcomes, strict=True))
