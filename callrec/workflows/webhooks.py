"""WebhookDeliveryWorkflow: one durable workflow per event, id = `delivery_workflow_id(event)`.

Posts the event to every URL in `delivery.urls` (the endpoints that want it, each once, as
`emit_webhook` picks them), concurrently, each retried with backoff (1 s doubling up to 60 s) until it is
taken, refused for good (`WebhookRejected`), or `give_up_after_s` has passed. One endpoint failing never
fails the workflow: the result says what became of each URL. Its input and history hold URLs only: each
attempt's activity looks the endpoint's secret up in the worker's configuration.

Start it through the `emit_webhook` activity (from a workflow too: a delivery then outlives the workflow
that emitted it), which starts it with `id=delivery_workflow_id(event)` and
`id_reuse_policy=DELIVERY_ID_REUSE_POLICY`: a second start of the same event raises
WorkflowAlreadyStartedError, whether the first is still running or has closed.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, FailureError
from temporalio.exceptions import TimeoutError as TemporalTimeout

with workflow.unsafe.imports_passed_through():
    from callrec.activities.webhooks import DELIVERY_WORKFLOW, REJECTED, WebhookActivities
    from callrec.domain.webhook_delivery import WebhookAttempt, WebhookDelivery

DELIVERED = "delivered"
ATTEMPT_TIMEOUT = timedelta(seconds=30)
MAX_RETRY_INTERVAL = timedelta(seconds=60)


def _last_error(err: BaseException) -> str:
    """The innermost failure's message (a timeout's cause is the last attempt's error)."""
    message = str(err)
    cause: BaseException | None = err
    while isinstance(cause, FailureError):
        if cause.message:
            message = cause.message
        cause = cause.cause
    return message


@workflow.defn(name=DELIVERY_WORKFLOW)  # the name `emit_webhook` starts it by
class WebhookDeliveryWorkflow:
    @workflow.run
    async def run(self, delivery: WebhookDelivery) -> dict[str, str]:
        """Per URL: "delivered", "rejected: <why>" or "gave up: <why>"."""
        urls = list(dict.fromkeys(delivery.urls))  # each once, should a caller repeat one
        outcomes = await asyncio.gather(*(self._deliver(delivery, url) for url in urls))
        return dict(zip(urls, outcomes, strict=True))

    async def _deliver(self, delivery: WebhookDelivery, url: str) -> str:
        try:
            await workflow.execute_activity_method(
                WebhookActivities.deliver_webhook,
                WebhookAttempt(url=url, event=delivery.event),
                start_to_close_timeout=ATTEMPT_TIMEOUT,
                schedule_to_close_timeout=timedelta(seconds=delivery.give_up_after_s),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=delivery.retry_initial_s),
                    backoff_coefficient=2.0,
                    maximum_interval=MAX_RETRY_INTERVAL,
                    maximum_attempts=0,  # unlimited: the schedule-to-close timeout ends it
                    non_retryable_error_types=[REJECTED],
                ),
            )
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, CancelledError):
                raise
            if isinstance(cause, ApplicationError) and cause.type == REJECTED:
                outcome = f"rejected: {cause.message}"
            elif isinstance(cause, TemporalTimeout):
                last = _last_error(cause)
                outcome = f"gave up: not delivered within {delivery.give_up_after_s:g} s; last error: {last}"
            else:
                outcome = f"gave up: {_last_error(err)}"
            workflow.logger.warning("webhook %s to %s: %s", delivery.event.event, url, outcome)
            return outcome
        return DELIVERED
