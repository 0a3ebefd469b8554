"""Webhook delivery on the real Temporal dev server, to a receiver on loopback that checks what it is sent.

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
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from quart import Quart, request
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from callrec.activities.webhooks import WebhookActivities, webhook_activities
from callrec.domain.webhook_delivery import (
    DELIVERY_ID_REUSE_POLICY,
    WebhookAttempt,
    WebhookDelivery,
    delivery_workflow_id,
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
            scripted = self.script.get(hook)
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

    task_queue: str
    activities: WebhookActivities

    async def emit(self, event: WebhookEvent) -> int:
        return await ActivityEnvironment().run(self.activities.emit_webhook, event)


@asynccontextmanager
async def webhook_worker(
    client: Client, http: httpx.AsyncClient, endpoints: list[WebhookEndpoint]
) -> AsyncIterator[Webhooks]:
    """A worker on a fresh task queue for the delivery workflow and the activities, holding `endpoints`."""
    queue = f"webhooks-{uuid.uuid4().hex[:8]}"
    activities = webhook_activities(http, endpoints, client, queue)
    assert [getattr(a, "__name__", None) for a in activities] == ["emit_webhook", "deliver_webhook"]
    async with Worker(client, task_queue=queue, workflows=[WebhookDeliveryWorkflow], activities=activities):
        yield Webhooks(queue, WebhookActivities(http, endpoints, client, queue))


def make_event(name: EventName = "recordingEnded") -> WebhookEvent:
    return WebhookEvent(
        event=name,
        creation_date=int(time.time() * 1000),
        data={"recordingId": f"room--eg--{uuid.uuid4().hex[:6]}", "status": "complete", "room": "Café ☕"},
        idempotency_key=uuid.uuid4().hex,
    )


async def start(client: Client, task_queue: str, delivery: WebhookDelivery) -> WorkflowHandle[Any, dict[str, str]]:
    return await client.start_workflow(
        WebhookDeliveryWorkflow.run,
        delivery,
        id=delivery_workflow_id(delivery.event),
        task_queue=task_queue,
        id_reuse_policy=DELIVERY_ID_REUSE_POLICY,
    )


async def deliver(client: Client, task_queue: str, delivery: WebhookDelivery) -> dict[str, str]:
    return await (await start(client, task_queue, delivery)).result()


async def emitted(client: Client, event: WebhookEvent) -> dict[str, str]:
    """The result of the delivery workflow `emit_webhook` started for `event`."""
    result: dict[str, str] = await client.get_workflow_handle(delivery_workflow_id(event)).result()
    return result


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
        result = await emitted(client, event)

    assert result == {everything.url: "delivered", ended.url: "delivered"}
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


async def test_emit_with_no_endpoint_that_wants_it_starts_nothing(
    client: Client, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    event = make_event("recordingEnded")
    failed_only = receiver.endpoint("failed", events=["recordingFailed"])
    async with webhook_worker(client, http, [failed_only]) as hooks:
        assert await hooks.emit(event) == 0
        with pytest.raises(RPCError) as raised:
            await client.get_workflow_handle(delivery_workflow_id(event)).describe()
        assert raised.value.status == RPCStatusCode.NOT_FOUND
    # Without a client at all: it never needed Temporal.
    for endpoints in ([], [failed_only]):
        assert await ActivityEnvironment().run(WebhookActivities(http, endpoints).emit_webhook, event) == 0
    assert receiver.hits == []


async def test_emit_retried_starts_one_delivery(client: Client, http: httpx.AsyncClient, receiver: Receiver) -> None:
    event = make_event()
    hook = receiver.endpoint("once")
    receiver.script["once"] = [503]  # keeps the delivery running while the retried emit comes
    async with webhook_worker(client, http, [hook]) as hooks:
        handle = client.get_workflow_handle(delivery_workflow_id(event))
        assert await hooks.emit(event) == 1
        run_id = (await handle.describe()).run_id
        assert await hooks.emit(event) == 1  # the activity, retried: its first attempt started it already
        assert (await handle.describe()).run_id == run_id
        assert await emitted(client, event) == {hook.url: "delivered"}
        assert await hooks.emit(event) == 1  # and after it closed
        assert (await handle.describe()).run_id == run_id

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
        assert await emitted(client, event) == {first.url: "delivered"}

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
        assert await emitted(client, event) == {
            flaky.url: "delivered",
            bad.url: f"rejected: webhook {bad.url} answered 400: nope, scripted 400 for this hook",
        }
        history = await client.get_workflow_handle(delivery_workflow_id(event)).fetch_history()

    raw = history.to_json()
    decoded = list(_base64_strings(json.loads(raw)))
    # The payloads were found and decoded: the input, with the event and the URLs, is among them.
    assert any(event.idempotency_key in d and flaky.url in d and bad.url in d for d in decoded)
    assert any("Café ☕" in d for d in decoded)
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
    delivery = WebhookDelivery(urls=[flaky.url], event=event, retry_initial_s=0.1)  # the server makes it ~1 s

    async with webhook_worker(client, http, [flaky]) as hooks:
        result = await deliver(client, hooks.task_queue, delivery)

    assert result == {flaky.url: "delivered"}
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
            delivery = WebhookDelivery(urls=[late.url], event=event, retry_initial_s=0.2)
            started = time.monotonic()
            handle = await start(client, hooks.task_queue, delivery)
            result = await handle.result()

        assert result == {late.url: "delivered"}
        assert time.monotonic() - started >= 1.5
        [hit] = receiver.hits_of("late")  # the earlier attempts found nobody listening
        assert hit.valid and hit.status == 200 and hit.key == event.idempotency_key
        assert receiver.deliveries == {("late", event.idempotency_key): event.body()}
        history = await handle.fetch_history()
        attempts = [
            e.activity_task_started_event_attributes.attempt
            for e in history.events
            if e.HasField("activity_task_started_event_attributes")
        ]
        assert len(attempts) == 1 and attempts[0] >= 3
    finally:
        receiver.stop.set()
        await serving


async def test_400_is_final_and_other_endpoints_still_get_it(
    client: Client, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    event = make_event()
    bad = receiver.endpoint("bad")
    good = receiver.endpoint("good")
    receiver.always["bad"] = 400
    delivery = WebhookDelivery(urls=[bad.url, good.url], event=event, retry_initial_s=0.1)

    async with webhook_worker(client, http, [bad, good]) as hooks:
        result = await deliver(client, hooks.task_queue, delivery)
        await asyncio.sleep(0.5)  # well past the first retry interval

    assert result[good.url] == "delivered"
    assert result[bad.url] == f"rejected: webhook {bad.url} answered 400: nope, scripted 400 for this hook"
    assert [h.status for h in receiver.hits_of("bad")] == [400]


async def test_url_no_longer_configured_is_final_and_others_still_get_it(
    client: Client, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    event = make_event()
    good = receiver.endpoint("good")
    gone = receiver.url("gone")  # emitted while configured, say; the worker's configuration has lost it since
    delivery = WebhookDelivery(urls=[gone, good.url], event=event, retry_initial_s=0.1)

    async with webhook_worker(client, http, [good]) as hooks:
        result = await deliver(client, hooks.task_queue, delivery)

    assert result == {gone: f"rejected: webhook {gone}: endpoint no longer configured", good.url: "delivered"}
    assert receiver.hits_of("gone") == []


async def test_gives_up_after_give_up_after_s(client: Client, http: httpx.AsyncClient, receiver: Receiver) -> None:
    event = make_event()
    down = receiver.endpoint("down")
    receiver.always["down"] = 503
    delivery = WebhookDelivery(urls=[down.url], event=event, retry_initial_s=0.1, give_up_after_s=3.0)

    async with webhook_worker(client, http, [down]) as hooks:
        started = time.monotonic()
        result = await deliver(client, hooks.task_queue, delivery)

    assert time.monotonic() - started < 20
    outcome = result[down.url]
    # Temporal ends the retries either when the time is up or when the next attempt could not fit in it.
    assert outcome.startswith("gave up: "), outcome
    assert "answered 503" in outcome
    assert len(receiver.hits_of("down")) >= 2


async def test_starting_the_same_event_twice_delivers_once(
    client: Client, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    event = make_event()
    hook = receiver.endpoint("once")
    receiver.script["once"] = [503]  # keeps the first workflow running while the second start comes
    delivery = WebhookDelivery(urls=[hook.url], event=event, retry_initial_s=0.3)
    assert delivery_workflow_id(event) == delivery_workflow_id(event.model_copy())

    async with webhook_worker(client, http, [hook]) as hooks:
        first = await start(client, hooks.task_queue, delivery)
        with pytest.raises(WorkflowAlreadyStartedError):  # while the first is still retrying
            await start(client, hooks.task_queue, delivery)
        assert await first.result() == {hook.url: "delivered"}
        with pytest.raises(WorkflowAlreadyStartedError):  # and after it closed
            await start(client, hooks.task_queue, delivery)

    assert [h.status for h in receiver.hits_of("once")] == [503, 200]
    assert receiver.deliveries == {("once", event.idempotency_key): event.body()}


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
