"""WebhookEndpointWorkflow: one long-lived workflow per webhook endpoint URL delivers every event sent there.

`emit_webhook` (and the API, for room events) hands it each event with signal-with-start, so the first event
starts it and the next ones join its queue; its id is `endpoint_workflow_id(task_queue, url)`, so the Temporal UI
lists one `webhooks-endpoint-<host>-<hash>` per endpoint, not one workflow per event. It takes an event once (by
its idempotency key, the latest `SEEN_KEYS` remembered), and delivers each with `deliver` (retried with backoff
until taken, refused for good, or `give_up_after_s`), up to `max_in_flight` at once, the events of one recording
(or room) one after the other in the order they came. After `events_per_run` events, or when Temporal suggests
it, it stops starting deliveries, lets those in flight finish, and continues as new with what is still queued,
the keys it remembers and its latest outcomes. Its `status` query and current details say what it is doing.

Bounded: at most `max_queued` events wait (a new one beyond is dropped, its outcome says so), and an endpoint that
stays down does not hold a run open for days while signals pile up in its history: past `drain_history_limit`
history events it cancels the deliveries in flight and hands them to the next run too (so a receiver may get one
of them twice; it drops repeats by the idempotency key).
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from callrec.activities.webhooks import ENDPOINT_WORKFLOW
    from callrec.domain.webhook_delivery import (
        ENQUEUE_SIGNAL,
        RECENT_OUTCOMES,
        SEEN_KEYS,
        EndpointInput,
        EndpointStatus,
        endpoint_host,
        order_key,
    )
    from callrec.domain.webhooks import WebhookEvent
    from callrec.workflows.webhooks import DELIVERED, deliver


@workflow.defn(name=ENDPOINT_WORKFLOW)  # the name `emit_webhook` starts it by
class WebhookEndpointWorkflow:
    @workflow.init
    def __init__(self, input: EndpointInput) -> None:
        self.input = input
        self.queue: list[WebhookEvent] = list(input.queue)  # taken, not yet started, oldest first
        self.seen: dict[str, None] = dict.fromkeys(input.seen)  # insertion-ordered: the oldest goes first
        self.outcomes: dict[str, str] = dict(input.outcomes)
        self.delivered = input.delivered
        self.in_flight: dict[str, WebhookEvent] = {}  # order key -> its event being delivered
        self.tasks: dict[str, asyncio.Task[None]] = {}  # order key -> its delivery
        self.taken = 0  # events taken by this run
        self.last = ""

    @workflow.signal(name=ENQUEUE_SIGNAL)
    def enqueue(self, event: WebhookEvent) -> None:
        """Takes `event` for delivery, unless it was taken already (a retried emit)."""
        key = event.idempotency_key
        if key in self.seen:
            workflow.logger.info("webhook %s %s: taken already", event.event, key)
            return
        self.seen[key] = None
        while len(self.seen) > SEEN_KEYS:
            del self.seen[next(iter(self.seen))]
        self.taken += 1
        if len(self.queue) >= self.input.max_queued:
            self._settle(event, f"dropped: {len(self.queue)} events were already waiting")
            workflow.logger.warning("webhook %s %s: %s", event.event, key, self.outcomes[key])
            return
        self.queue.append(event)
        self._show()

    @workflow.query
    def status(self) -> EndpointStatus:
        return EndpointStatus(
            url_host=endpoint_host(self.input.url),
            pending=len(self.queue) + len(self.in_flight),
            in_flight=len(self.in_flight),
            delivered=self.delivered,
            outcomes=dict(self.outcomes),
        )

    @workflow.run
    async def run(self, input: EndpointInput) -> None:
        self._show()
        while True:
            await workflow.wait_condition(lambda: self._should_continue() or self._next() is not None)
            if self._should_continue():
                break
            event = self._next()
            assert event is not None
            self.queue.remove(event)
            key = order_key(event)
            self.in_flight[key] = event
            self.tasks[key] = asyncio.create_task(self._deliver(key, event))
        history_limit = self.input.drain_history_limit
        await workflow.wait_condition(
            lambda: not self.in_flight or workflow.info().get_current_history_length() > history_limit
        )
        for task in self.tasks.values():  # still in flight: the next run delivers them
            task.cancel()
        await workflow.wait_condition(lambda: not self.in_flight and workflow.all_handlers_finished())
        workflow.continue_as_new(
            input.model_copy(
                update={
                    "queue": self.queue,
                    "seen": list(self.seen),
                    "outcomes": self.outcomes,
                    "delivered": self.delivered,
                }
            )
        )

    def _should_continue(self) -> bool:
        return self.taken >= self.input.events_per_run or workflow.info().is_continue_as_new_suggested()

    def _next(self) -> WebhookEvent | None:
        """The oldest queued event whose recording has none in flight, if another may start now."""
        if len(self.in_flight) >= self.input.max_in_flight:
            return None
        return next((e for e in self.queue if order_key(e) not in self.in_flight), None)

    async def _deliver(self, key: str, event: WebhookEvent) -> None:
        try:
            outcome = await deliver(
                self.input.url,
                event,
                self.input.give_up_after_s,
                self.input.retry_initial_s,
                summary=f"{event.event} {event.idempotency_key}",
            )
        except (asyncio.CancelledError, ActivityError):  # `deliver` raises only when it is cancelled
            self.queue.insert(0, event)  # the oldest of its recording's: first again, for the next run
            return
        finally:
            del self.in_flight[key]
            del self.tasks[key]
        if outcome == DELIVERED:
            self.delivered += 1
        self._settle(event, outcome)

    def _settle(self, event: WebhookEvent, outcome: str) -> None:
        self.outcomes[event.idempotency_key] = outcome
        while len(self.outcomes) > RECENT_OUTCOMES:
            del self.outcomes[next(iter(self.outcomes))]
        self.last = f"{event.event} {event.idempotency_key}: {outcome}"
        self._show()

    def _show(self) -> None:
        """What the Temporal UI shows it doing now (its current details). They name the host too: a run continued as
        new has no static summary (the SDK's continue-as-new does not carry it)."""
        pending = len(self.queue) + len(self.in_flight)
        host = endpoint_host(self.input.url)
        text = f"To {host}: {pending} pending ({len(self.in_flight)} being delivered), {self.delivered} delivered"
        if self.last:
            text += f"\nlast: {self.last}"
        workflow.set_current_details(text)
