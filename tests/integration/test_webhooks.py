"""Webhook delivery on the real Temporal dev server, to a receiver on loopback that checks what it is sent.

Events go to one long-lived WebhookEndpointWorkflow per endpoint URL; the tests read what became of each event
through its `status` query, as an operator would.

Temporal (dev server 1.32) spaces activity retries about 1 s apart at least, whatever a shorter
`initial_interval` says, so each retry here costs a second.

The receiver verifies each request's signature and timestamp, keeps every request it got, and keeps one
delivery per X-Idempotency-Key (as a receiver should): it records a signed delivery before it answers, so a
scripted 503 plays "processed, but the answer was lost" and the retry that follows must be a duplicate.

Each test runs its own worker whose WebhookActivities hold that test's endpoints (with their secrets):
the workflows are handed URLs only.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from quart import Quart, request
from temporalio.api.enums.v1 import EventType
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from callrec.activities.webhooks import WebhookActivities, webhook_activities
from callrec.domain.webhook_delivery import (
    ENQUEUE_SIGNAL,
    EndpointInput,
    EndpointStatus,
    WebhookAttempt,
    WebhookDelivery,
    delivery_workflow_id,
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
from callrec.servers import serve_app
from callrec.workflows.webhook_endpoint import WebhookEndpointWorkflow
from callrec.workflows.webhooks import WebhookDeliveryWorkflow
from tests.conftest import free_port, wait_until_up

FRESH_MS = 5 * 60 * 1000  # the receiver refuses timestamps further off than this
OTHER_SECRET = "not-the-endpoint-secret-at-all"


@dataclass
class Hit:
    hook: str
    timestamp: str
    signature: str
    key: str
    content_type: str
    body: bytes
    valid: bool
    status: int


@dataclass
class Receiver:
    port: int = field(default_factory=free_port)
    secrets: dict[str, str] = field(default_factory=dict)
    script: dict[str, list[int]] = field(default_factory=dict)  # per hook: the next answers, then `always`
    key_script: dict[str, list[int]] = field(default_factory=dict)  # per idempotency key: its next answers first
    always: dict[str, int] = field(default_factory=dict)  # per hook: the answer once the script is used up
    hits: list[Hit] = field(default_factory=list)
    deliveries: dict[tuple[str, str], bytes] = field(default_factory=dict)  # (hook, idempotency key) -> body
    duplicates: int = 0
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def endpoint(self, hook: str, events: list[EventName] | None = None) -> WebhookEndpoint:
        secret = self.secrets.setdefault(hook, f"secret-{hook}-{uuid.uuid4().hex}")
        return WebhookEndpoint(url=self.url(hook), secret=secret, events=events)

    def url(self, hook: str) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/{hook}"

    def hits_of(self, hook: str) -> list[Hit]:
        return [h for h in self.hits if h.hook == hook]

    def app(self) -> Quart:
        app = Quart("webhook-receiver")

        @app.post("/hooks/<hook>")
        async def hook(hook: str) -> tuple[str, int]:
            raw = await request.get_data(as_text=False)
            assert isinstance(raw, bytes)
            headers = request.headers
            ts, sig = headers.get(TIMESTAMP_HEADER, ""), headers.get(SIGNATURE_HEADER, "")
            key = headers.get(IDEMPOTENCY_HEADER, "")
            fresh = ts.isdigit() and abs(time.time() * 1000 - int(ts)) < FRESH_MS
            valid = fresh and hook in self.secrets and hmac.compare_digest(signature(self.secrets[hook], ts, raw), sig)
            scripted = self.key_script.get(key) or self.script.get(hook)
            status = scripted.pop(0) if scripted else self.always.get(hook, 200)
            if not valid:
                status = 401
            elif (hook, key) in self.deliveries:
                self.duplicates += 1
            else:
                self.deliveries[(hook, key)] = raw
            self.hits.append(Hit(hook, ts, sig, key, headers.get("Content-Type", ""), raw, valid, status))
            return ("ok" if status < 300 else f"nope, scripted {status}\n  for this hook"), status

        @app.get("/health")
        async def health() -> str:
            return "ok"

        return app

    async def serve(self, after_s: float = 0.0) -> None:
        await asyncio.sleep(after_s)

        async def stopped() -> None:
            await self.stop.wait()

        await serve_app(self.app(), "127.0.0.1", self.port, stopped)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    task = asyncio.create_task(r.serve())
    await wait_until_up(f"http://127.0.0.1:{r.port}/health")
    yield r
    r.stop.set()
    await task


@pytest.fixture(scope="module")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture
def client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@dataclass
class Webhooks:
    """A running worker's task queue, and activities configured like the worker's (to emit with)."""

    client: Client
    task_queue: str
    activities: WebhookActivities

    async def emit(self, event: WebhookEvent) -> int:
        return await ActivityEnvironment().run(self.activities.emit_webhook, event)

    def endpoint(self, url: str) -> WorkflowHandle[Any, Any]:
        """The delivery workflow of the endpoint at `url` (its latest run)."""
        return self.client.get_workflow_handle(endpoint_workflow_id(self.task_queue, url))

    async def status(self, url: str) -> EndpointStatus:
        return await self.endpoint(url).query(WebhookEndpointWorkflow.status)

    async def outcome(self, url: str, event: WebhookEvent) -> str:
        """What became of `event` at the endpoint `url`, as its delivery workflow tells, once it is settled."""
        deadline = time.monotonic() + 60
        while True:
            status = await self.status(url)
            if event.idempotency_key in status.outcomes:
                return status.outcomes[event.idempotency_key]
            assert time.monotonic() < deadline, status
            await asyncio.sleep(0.1)

    async def start(self, input: EndpointInput, event: WebhookEvent) -> WorkflowHandle[Any, Any]:
        """Hands `event` to the endpoint's workflow as `emit_webhook` does, starting it, if it is not running, with
        `input` (shorter retries, fewer events per run)."""
        return await self.client.start_workflow(
            WebhookEndpointWorkflow.run,
            input,
            id=endpoint_workflow_id(self.task_queue, input.url),
            task_queue=self.task_queue,
            start_signal=ENQUEUE_SIGNAL,
            start_signal_args=[event],
            static_summary=endpoint_summary(input.url),
        )

    async def deliver(self, input: EndpointInput, event: WebhookEvent) -> str:
        await self.start(input, event)
        return await self.outcome(input.url, event)


@asynccontextmanager
async def webhook_worker(
    client: Client, http: httpx.AsyncClient, endpoints: list[WebhookEndpoint]
) -> AsyncIterator[Webhooks]:
    """A worker on a fresh task queue for the delivery workflows and the activities, holding `endpoints`."""
    queue = f"webhooks-{uuid.uuid4().hex[:8]}"
    activities = webhook_activities(http, endpoints, client, queue)
    assert [getattr(a, "__name__", None) for a in activities] == ["emit_webhook", "deliver_webhook"]
    workflows = [WebhookEndpointWorkflow, WebhookDeliveryWorkflow]
    async with Worker(client, task_queue=queue, workflows=workflows, activities=activities):
        yield Webhooks(client, queue, WebhookActivities(http, endpoints, client, queue))
        if target := os.environ.get("CALLREC_SAVE_HISTORIES"):
            await save_histories(client, queue, Path(target))


async def save_histories(client: Client, task_queue: str, directory: Path) -> None:
    """Keeps the histories of the task queue's workflow runs (closed or not) for the replay tests."""
    directory.mkdir(parents=True, exist_ok=True)
    async for execution in client.list_workflows(f'TaskQueue = "{task_queue}"'):
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        history = await handle.fetch_history()
        (directory / f"{execution.workflow_type}-{execution.run_id}.json").write_text(history.to_json())


def make_event(name: EventName = "recordingEnded", recording_id: str | None = None) -> WebhookEvent:
    recording_id = recording_id or f"room--eg--{uuid.uuid4().hex[:6]}"
    return WebhookEvent(
        event=name,
        creation_date=int(time.time() * 1000),
        data={"recordingId": recording_id, "status": "complete", "room": "Café ☕"},
        idempotency_key=uuid.uuid4().hex,
    )


async def assert_not_started(handle: WorkflowHandle[Any, Any]) -> None:
    with pytest.raises(RPCError) as raised:
        await handle.describe()
    assert raised.value.status == RPCStatusCode.NOT_FOUND


async def test_event_goes_to_every_endpoint_that_wants_it_signed(
    client: Client, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    event = make_event("recordingEnded")
    everything = receiver.endpoint("all")
    ended = receiver.endpoint("ended", events=["recordingEnded", "recordingFailed"])
    failed_only = receiver.endpoint("failed", events=["recordingFailed"])

    started = time.time() * 1000
    async with webhook_worker(client, http, [everything, ended, failed_only]) as hooks:
        assert await hooks.emit(event) == 2
        assert await hooks.outcome(everything.url, event) == "delivered"
        assert await hooks.outcome(ended.url, event) == "delivered"
        await assert_not_started(hooks.endpoint(failed_only.url))

        # What an operator sees of an endpoint's workflow: what it is, where it delivers, what it did.
        description = await hooks.endpoint(everything.url).describe()
        assert description.workflow_type == "WebhookEndpointWorkflow"
        assert description.id.startswith("webhooks-endpoint-127.0.0.1-")
        assert await description.static_summary() == "Webhook deliveries to 127.0.0.1"
        assert description.status == WorkflowExecutionStatus.RUNNING  # waiting for the next event
        status = await hooks.status(everything.url)
        assert (status.url_host, status.pending, status.in_flight, status.delivered) == ("127.0.0.1", 0, 0, 1)
        details = await current_details(hooks.endpoint(everything.url))
        assert details == (
            f"To 127.0.0.1: 0 pending (0 being delivered), 1 delivered\nlast: recordingEnded {event.idempotency_key}: "
            "delivered"
        )

    assert receiver.hits_of("failed") == []
    for endpoint, hook in ((everything, "all"), (ended, "ended")):
        [hit] = receiver.hits_of(hook)
        assert hit.valid and hit.status == 200
        assert hit.content_type == "application/json"
        assert hit.key == event.idempotency_key
        assert hit.body == event.body()
        assert json.loads(hit.body) == {
            "event": "recordingEnded",
            "creationDate": event.creation_date,
            "data": event.data,
        }
        assert started - 1000 <= int(hit.timestamp) <= time.time() * 1000
        assert hit.signature == signature(endpoint.secret, hit.timestamp, hit.body)
        assert hit.signature != signature(OTHER_SECRET, hit.timestamp, hit.body)
        assert hit.signature != signature(endpoint.secret, str(int(hit.timestamp) + 1), hit.body)
    assert receiver.hits_of("all")[0].signature != receiver.hits_of("ended")[0].signature  # each its own secret


async def current_details(handle: WorkflowHandle[Any, Any]) -> str:
    """What the Temporal UI shows under "Current details" (the SDK's built-in metadata query)."""
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    return str(metadata.current_details)


def test_endpoint_ids_name_the_host_only_and_differ_per_url_and_task_queue() -> None:
    url = "https://user:pw@hooks.example.com:8443/t/0123456789abcdef?token=xyz"
    workflow_id = endpoint_workflow_id("callrec", url)
    assert workflow_id.startswith("webhooks-endpoint-hooks.example.com-")
    assert not any(secret in workflow_id for secret in ("user", "pw", "8443", "0123456789abcdef", "xyz"))
    assert endpoint_summary(url) == "Webhook deliveries to hooks.example.com"
    assert workflow_id == endpoint_workflow_id("callrec", url)
    assert workflow_id != endpoint_workflow_id("callrec", url.replace("xyz", "abc"))
    assert workflow_id != endpoint_workflow_id("other-deployment", url)


async def test_emit_with_no_endpoint_that_wants_it_starts_nothing(
    client: Client, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    event = make_event("recordingEnded")
    failed_only = receiver.endpoint("failed", events=["recordingFailed"])
    async with webhook_worker(client, http, [failed_only]) as hooks:
        assert await hooks.emit(event) == 0
        await assert_not_started(hooks.endpoint(failed_only.url))
    # Without a client at all: it never needed Temporal.
    for endpoints in ([], [failed_only]):
        assert await ActivityEnvironment().run(WebhookActivities(http, endpoints).emit_webhook, event) == 0
    assert receiver.hits == []


async def test_emit_retried_delivers_once(client: Client, http: httpx.AsyncClient, receiver: Receiver) -> None:
    event = make_event()
    hook = receiver.endpoint("once")
    receiver.script["once"] = [503]  # keeps the delivery going while the retried emit comes
    async with webhook_worker(client, http, [hook]) as hooks:
        assert await hooks.emit(event) == 1
        run_id = (await hooks.endpoint(hook.url).describe()).run_id
        assert await hooks.emit(event) == 1  # the activity, retried: its first attempt handed the event already
        assert await hooks.outcome(hook.url, event) == "delivered"
        assert await hooks.emit(event) == 1  # and once it was delivered
        status = await hooks.status(hook.url)
        assert (status.pending, status.delivered) == (0, 1)
        assert (await hooks.endpoint(hook.url).describe()).run_id == run_id  # the same workflow took them all

    assert [h.status for h in receiver.hits_of("once")] == [503, 200]
    assert receiver.deliveries == {("once", event.idempotency_key): event.body()}


async def test_emit_sends_a_url_once_signed_by_the_first_endpoint_that_wants_it(
    client: Client, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    event = make_event("recordingEnded")
    first = receiver.endpoint("dup")  # the receiver checks "dup" against this one's secret
    again = WebhookEndpoint(url=first.url, secret=OTHER_SECRET)
    not_this_event = WebhookEndpoint(url=first.url, secret=OTHER_SECRET, events=["recordingFailed"])
    async with webhook_worker(client, http, [not_this_event, first, again]) as hooks:
        assert hooks.activities.urls_for("recordingEnded") == [first.url]
        assert await hooks.emit(event) == 1
        assert await hooks.outcome(first.url, event) == "delivered"

    [hit] = receiver.hits_of("dup")
    assert hit.valid and hit.signature == signature(first.secret, hit.timestamp, hit.body)


async def test_no_secret_in_the_delivery_history(client: Client, http: httpx.AsyncClient, receiver: Receiver) -> None:
    event = make_event("recordingEnded")
    flaky = receiver.endpoint("flaky")
    bad = receiver.endpoint("bad")
    elsewhere = receiver.endpoint("elsewhere", events=["recordingFailed"])
    receiver.script["flaky"] = [503]
    receiver.always["bad"] = 400
    async with webhook_worker(client, http, [flaky, bad, elsewhere]) as hooks:
        assert await hooks.emit(event) == 2
        assert await hooks.outcome(flaky.url, event) == "delivered"
        assert await hooks.outcome(bad.url, event) == (
            f"rejected: webhook {bad.url} answered 400: nope, scripted 400 for this hook"
        )
        histories = [await hooks.endpoint(e.url).fetch_history() for e in (flaky, bad)]

    for history, url in zip(histories, (flaky.url, bad.url), strict=True):
        raw = history.to_json()
        decoded = list(_base64_strings(json.loads(raw)))
        # The payloads were found and decoded: the input with the URL, the signalled event, are among them.
        assert any(url in d for d in decoded)
        assert any(event.idempotency_key in d and "Café ☕" in d for d in decoded)
        secrets = [flaky.secret, bad.secret, elsewhere.secret]
        assert len(receiver.secrets) == 3 and sorted(secrets) == sorted(receiver.secrets.values())
        for secret in secrets:
            assert secret not in raw
            assert base64.b64encode(secret.encode()).decode() not in raw
            assert not [d for d in decoded if secret in d]


def _base64_strings(node: object) -> Iterator[str]:
    """Every string in a history's JSON that is base64 (payload data and metadata among them), decoded."""
    if isinstance(node, dict):
        for value in node.values():
            yield from _base64_strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _base64_strings(value)
    elif isinstance(node, str):
        try:
            yield base64.b64decode(node, validate=True).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            pass


async def test_answered_503_then_delivered_once(client: Client, http: httpx.AsyncClient, receiver: Receiver) -> None:
    event = make_event()
    flaky = receiver.endpoint("flaky")
    receiver.script["flaky"] = [503, 503]

    async with webhook_worker(client, http, [flaky]) as hooks:
        # the server makes the 0.1 s retry interval ~1 s
        assert await hooks.deliver(EndpointInput(url=flaky.url, retry_initial_s=0.1), event) == "delivered"

    hits = receiver.hits_of("flaky")
    assert [h.status for h in hits] == [503, 503, 200]
    assert {h.key for h in hits} == {event.idempotency_key}
    assert all(h.valid and h.body == event.body() for h in hits)
    timestamps = [int(h.timestamp) for h in hits]
    assert timestamps == sorted(timestamps) and len(set(timestamps)) == len(timestamps)  # each attempt its own
    assert receiver.deliveries == {("flaky", event.idempotency_key): event.body()}
    assert receiver.duplicates == 2


async def test_endpoint_not_listening_then_back(client: Client, http: httpx.AsyncClient) -> None:
    receiver = Receiver()
    event = make_event()
    late = receiver.endpoint("late")
    serving = asyncio.create_task(receiver.serve(after_s=1.5))
    try:
        async with webhook_worker(client, http, [late]) as hooks:
            started = time.monotonic()
            assert await hooks.deliver(EndpointInput(url=late.url, retry_initial_s=0.2), event) == "delivered"
            history = await hooks.endpoint(late.url).fetch_history()

        assert time.monotonic() - started >= 1.5
        [hit] = receiver.hits_of("late")  # the earlier attempts found nobody listening
        assert hit.valid and hit.status == 200 and hit.key == event.idempotency_key
        assert receiver.deliveries == {("late", event.idempotency_key): event.body()}
        attempts = [
            e.activity_task_started_event_attributes.attempt
            for e in history.events
            if e.HasField("activity_task_started_event_attributes")
        ]
        assert len(attempts) == 1 and attempts[0] >= 3
    finally:
        receiver.stop.set()
        await serving


async def test_400_is_final_and_other_endpoints_and_events_still_go(
    client: Client, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    event = make_event()
    bad = receiver.endpoint("bad")
    good = receiver.endpoint("good")
    receiver.always["bad"] = 400

    async with webhook_worker(client, http, [bad, good]) as hooks:
        assert await hooks.deliver(EndpointInput(url=bad.url, retry_initial_s=0.1), event) == (
            f"rejected: webhook {bad.url} answered 400: nope, scripted 400 for this hook"
        )
        assert await hooks.deliver(EndpointInput(url=good.url, retry_initial_s=0.1), event) == "delivered"
        await asyncio.sleep(0.5)  # well past the first retry interval
        assert [h.status for h in receiver.hits_of("bad")] == [400]
        # The endpoint's workflow goes on with its next event (of the same recording too).
        receiver.always["bad"] = 200
        same_recording = make_event("recordingUpdated", recording_id=event.data["recordingId"])
        assert await hooks.emit(same_recording) == 2
        assert await hooks.outcome(bad.url, same_recording) == "delivered"

    assert [h.status for h in receiver.hits_of("bad")] == [400, 200]


async def test_url_no_longer_configured_is_final_and_others_still_get_it(
    client: Client, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    event = make_event()
    good = receiver.endpoint("good")
    gone = receiver.url("gone")  # emitted while configured, say; the worker's configuration has lost it since

    async with webhook_worker(client, http, [good]) as hooks:
        assert await hooks.deliver(EndpointInput(url=gone, retry_initial_s=0.1), event) == (
            f"rejected: webhook {gone}: endpoint no longer configured"
        )
        assert await hooks.emit(event) == 1
        assert await hooks.outcome(good.url, event) == "delivered"

    assert receiver.hits_of("gone") == []


async def test_gives_up_after_give_up_after_s(client: Client, http: httpx.AsyncClient, receiver: Receiver) -> None:
    event = make_event()
    down = receiver.endpoint("down")
    receiver.always["down"] = 503

    async with webhook_worker(client, http, [down]) as hooks:
        started = time.monotonic()
        outcome = await hooks.deliver(EndpointInput(url=down.url, retry_initial_s=0.1, give_up_after_s=3.0), event)
        status = await hooks.status(down.url)

    assert time.monotonic() - started < 20
    # Temporal ends the retries either when the time is up or when the next attempt could not fit in it.
    assert outcome.startswith("gave up: "), outcome
    assert "answered 503" in outcome
    assert len(receiver.hits_of("down")) >= 2
    assert (status.pending, status.delivered) == (0, 0)


async def test_a_recordings_events_arrive_in_order_and_others_are_not_held_up(
    client: Client, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    hook = receiver.endpoint("ordered")
    first, second, third = (make_event(name, recording_id="room--a--1") for name in ("recordingStarted",) * 3)
    other = make_event("recordingStarted", recording_id="room--b--1")
    receiver.key_script[first.idempotency_key] = [503, 503]  # the recording's first event needs three attempts

    async with webhook_worker(client, http, [hook]) as hooks:
        for event in (first, second, third, other):
            assert await hooks.emit(event) == 1
        for event in (first, second, third, other):
            assert await hooks.outcome(hook.url, event) == "delivered"

    taken = [h.key for h in receiver.hits_of("ordered") if h.status == 200]
    keys = [e.idempotency_key for e in (first, second, third)]
    assert [k for k in taken if k in keys] == keys  # each after the one before it was taken
    assert taken.index(other.idempotency_key) < taken.index(first.idempotency_key)  # another recording's went on
    assert [h.key for h in receiver.hits_of("ordered") if h.status == 503] == [first.idempotency_key] * 2


async def test_continue_as_new_carries_the_queue_and_the_keys_taken(
    client: Client, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    hook = receiver.endpoint("long")
    first, second, third = (make_event(name, recording_id="room--c--1") for name in ("recordingUpdated",) * 3)
    receiver.key_script[first.idempotency_key] = [503, 503]  # in flight for a while: the others queue behind it

    async with webhook_worker(client, http, [hook]) as hooks:
        small = EndpointInput(url=hook.url, retry_initial_s=0.1, events_per_run=2)
        first_run = (await hooks.start(small, first)).result_run_id
        while not receiver.hits_of("long"):  # `first` is being delivered
            await asyncio.sleep(0.05)
        assert await hooks.emit(second) == 1  # the second event taken: the run continues as new once `first` is
        assert await hooks.emit(third) == 1  # taken while it waits for `first`: carried over
        for event in (first, second, third):
            assert await hooks.outcome(hook.url, event) == "delivered"
        assert await hooks.emit(first) == 1  # retried after the run it was taken by: still delivered once
        status = await hooks.status(hook.url)
        runs = [
            e async for e in client.list_workflows(f'WorkflowId = "{endpoint_workflow_id(hooks.task_queue, hook.url)}"')
        ]
        history = await client.get_workflow_handle(hooks.endpoint(hook.url).id, run_id=first_run).fetch_history()
        latest = await hooks.endpoint(hook.url).describe()
        first_description = await client.get_workflow_handle(latest.id, run_id=first_run).describe()
        details = await current_details(hooks.endpoint(hook.url))

    assert [h.key for h in receiver.hits_of("long") if h.status == 200] == [
        e.idempotency_key for e in (first, second, third)
    ]
    assert (status.pending, status.delivered) == (0, 3)  # the count goes on across runs
    assert set(status.outcomes) == {e.idempotency_key for e in (first, second, third)}
    assert latest.run_id != first_run and latest.status == WorkflowExecutionStatus.RUNNING
    assert await first_description.static_summary() == "Webhook deliveries to 127.0.0.1"
    assert details.startswith("To 127.0.0.1: 0 pending")  # the next runs have no summary, their details name it
    assert len(runs) >= 2
    # The first run handed its successor the events it had not started, in order, and every key it took.
    carried = await carried_input(history)
    assert [e.idempotency_key for e in carried.queue] == [second.idempotency_key, third.idempotency_key]
    assert carried.seen == [e.idempotency_key for e in (first, second, third)]
    assert carried.outcomes == {first.idempotency_key: "delivered"}
    assert (carried.events_per_run, carried.retry_initial_s) == (2, 0.1)


async def test_an_endpoint_down_for_long_hands_its_deliveries_in_flight_to_the_next_run(
    client: Client, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    hook = receiver.endpoint("down")
    first, second = (make_event("recordingUpdated", recording_id="room--d--1") for _ in range(2))
    receiver.key_script[first.idempotency_key] = [503, 503, 503]

    async with webhook_worker(client, http, [hook]) as hooks:
        # a history limit so low that the run, once it took its two events, stops waiting for `first`
        small = EndpointInput(url=hook.url, retry_initial_s=0.1, events_per_run=2, drain_history_limit=1)
        first_run = (await hooks.start(small, first)).result_run_id
        while not receiver.hits_of("down"):  # `first` is being delivered
            await asyncio.sleep(0.05)
        assert await hooks.emit(second) == 1
        for event in (first, second):
            assert await hooks.outcome(hook.url, event) == "delivered"
        history = await client.get_workflow_handle(hooks.endpoint(hook.url).id, run_id=first_run).fetch_history()

    carried = await carried_input(history)
    assert [e.idempotency_key for e in carried.queue] == [first.idempotency_key, second.idempotency_key]
    assert carried.outcomes == {}
    taken = [h.key for h in receiver.hits_of("down") if h.status == 200]
    assert taken == [first.idempotency_key, second.idempotency_key]


async def test_beyond_max_queued_an_event_is_dropped_and_says_so(
    client: Client, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    hook = receiver.endpoint("full")
    first, second, third = (make_event("recordingUpdated", recording_id="room--e--1") for _ in range(3))
    receiver.key_script[first.idempotency_key] = [503]

    async with webhook_worker(client, http, [hook]) as hooks:
        await hooks.start(EndpointInput(url=hook.url, retry_initial_s=0.1, max_queued=1), first)
        while not receiver.hits_of("full"):  # `first` is being delivered, the queue is empty
            await asyncio.sleep(0.05)
        assert await hooks.emit(second) == 1  # waits behind it: the queue is full
        assert await hooks.emit(third) == 1
        assert await hooks.outcome(hook.url, third) == "dropped: 1 events were already waiting"
        for event in (first, second):
            assert await hooks.outcome(hook.url, event) == "delivered"

    assert third.idempotency_key not in {h.key for h in receiver.hits_of("full")}


async def carried_input(history: WorkflowHistory) -> EndpointInput:
    """What a run that continued as new handed the next one."""
    last = history.events[-1]
    assert last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    [carried] = await pydantic_data_converter.decode(
        last.workflow_execution_continued_as_new_event_attributes.input.payloads, [EndpointInput]
    )
    assert isinstance(carried, EndpointInput)
    return carried


async def test_the_retired_delivery_workflow_still_delivers(
    client: Client, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Runs an upgrade finds still running: nothing starts WebhookDeliveryWorkflow now, but the worker runs it."""
    event = make_event()
    bad = receiver.endpoint("bad")
    good = receiver.endpoint("good")
    receiver.script["good"] = [503]
    receiver.always["bad"] = 400
    delivery = WebhookDelivery(urls=[good.url, bad.url, good.url], event=event, retry_initial_s=0.1)

    async with webhook_worker(client, http, [bad, good]) as hooks:
        handle = await client.start_workflow(
            WebhookDeliveryWorkflow.run, delivery, id=delivery_workflow_id(event), task_queue=hooks.task_queue
        )
        result = await handle.result()

    assert result == {
        good.url: "delivered",
        bad.url: f"rejected: webhook {bad.url} answered 400: nope, scripted 400 for this hook",
    }
    assert [h.status for h in receiver.hits_of("good")] == [503, 200]


@pytest.mark.parametrize(
    ("status", "final"),
    [(200, None), (204, None), (408, False), (429, False), (500, False), (503, False)]
    + [(302, True), (400, True), (401, True), (404, True), (410, True), (422, True)],
)
async def test_activity_classifies_answers(
    http: httpx.AsyncClient, receiver: Receiver, status: int, final: bool | None
) -> None:
    receiver.always["x"] = status
    endpoint = receiver.endpoint("x")
    attempt = WebhookAttempt(url=endpoint.url, event=make_event())
    deliver_webhook = WebhookActivities(http, [endpoint]).deliver_webhook
    if final is None:
        await ActivityEnvironment().run(deliver_webhook, attempt)
        return
    with pytest.raises(Exception) as raised:
        await ActivityEnvironment().run(deliver_webhook, attempt)
    err = raised.value
    if final:
        assert isinstance(err, ApplicationError) and err.type == "WebhookRejected" and err.non_retryable
        assert f"answered {status}" in err.message
    else:
        assert not isinstance(err, ApplicationError), err  # a plain error: Temporal retries it
        assert f"answered {status}" in str(err)


async def test_activity_unreachable_is_retryable(http: httpx.AsyncClient) -> None:
    nobody = Receiver()
    endpoint = nobody.endpoint("x")
    attempt = WebhookAttempt(url=endpoint.url, event=make_event())
    with pytest.raises(RuntimeError, match="unreachable"):
        await ActivityEnvironment().run(WebhookActivities(http, [endpoint]).deliver_webhook, attempt)


async def test_activity_url_not_configured_is_final(http: httpx.AsyncClient, receiver: Receiver) -> None:
    configured = receiver.endpoint("x")
    attempt = WebhookAttempt(url=receiver.url("y"), event=make_event())
    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(WebhookActivities(http, [configured]).deliver_webhook, attempt)
    err = raised.value
    assert err.type == "WebhookRejected" and err.non_retryable
    assert err.message == f"webhook {receiver.url('y')}: endpoint no longer configured"
    assert receiver.hits == []
