"""Recording events reach webhook endpoints, signed, each once, even when the endpoint was down for a while; the
Temporal UI lists one delivery workflow per endpoint, none per event."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable

from temporalio.client import Client

from callrec.domain.webhook_delivery import endpoint_workflow_id
from tests.conftest import StackFactory, wait_until_up
from tests.helpers import create_room, join, record
from tests.integration.test_webhooks import Receiver


async def test_events_arrive_once_the_endpoint_is_back(stacks: StackFactory) -> None:
    receiver = Receiver()
    serving = asyncio.create_task(receiver.serve())
    await wait_until_up(f"http://127.0.0.1:{receiver.port}/health")
    try:
        everything = receiver.endpoint("all")
        only_ends = receiver.endpoint("ends", events=["recordingEnded", "recordingFailed"])
        stack = await stacks.start(webhooks=[everything, only_ends])
        room_id = await create_room(stack.api, autoShareToChat=True)
        await join(stack.api, room_id, "Alice")

        receiver.always["all"] = 503  # down for the whole recording
        done = await record(stack.api, room_id)
        assert done["status"] == "complete"
        await asyncio.sleep(1)
        assert all(hit.status == 503 for hit in receiver.hits_of("all"))
        receiver.always["all"] = 200  # back

        expected = ["meetingStarted", "recordingStarted", "recordingUpdated", "recordingUpdated", "recordingEnded",
                    "notificationCreated", "recordingShared"]  # fmt: skip
        deadline = time.monotonic() + 60
        while len([k for (hook, k) in receiver.deliveries if hook == "all"]) < len(expected):
            assert time.monotonic() < deadline, receiver.deliveries.keys()
            await asyncio.sleep(0.2)

        # The Temporal UI's list for this deployment: the recording, and one delivery workflow per endpoint.
        queue = stack.settings.task_queue
        endpoint_ids = {endpoint_workflow_id(queue, e.url) for e in (everything, only_ends)}
        listed = await listed_when(stack.client, f'TaskQueue = "{queue}"', lambda ids: endpoint_ids <= set(ids))
        assert Counter(listed.values()) == {"RecordingWorkflow": 1, "WebhookEndpointWorkflow": 2}, listed
        assert {i for i, kind in listed.items() if kind == "WebhookEndpointWorkflow"} == endpoint_ids
        recordings = [
            e.id
            async for e in stack.client.list_workflows(f'WorkflowType = "RecordingWorkflow" AND TaskQueue = "{queue}"')
        ]
        assert recordings == [i for i, kind in listed.items() if kind == "RecordingWorkflow"]
    finally:
        receiver.stop.set()
        await serving

    delivered = [json.loads(body) for (hook, _), body in receiver.deliveries.items() if hook == "all"]
    assert sorted(d["event"] for d in delivered) == sorted(expected)
    assert all(hit.valid for hit in receiver.hits)  # every attempt signed with the endpoint's secret
    by_event = {d["event"]: d for d in delivered}
    ended = by_event["recordingEnded"]["data"]
    assert (ended["recordingId"], ended["status"], ended["size"]) == (done["recordingId"], "complete", done["size"])
    assert by_event["notificationCreated"]["data"]["subject"] == "record_file_stored"
    assert by_event["recordingStarted"]["creationDate"] <= by_event["recordingEnded"]["creationDate"]
    # The filtered endpoint got only the end, and the endpoint that was down got each event once after dedup.
    assert [json.loads(b)["event"] for (hook, _), b in receiver.deliveries.items() if hook == "ends"] == [
        "recordingEnded"
    ]
    retried_keys = {hit.key for hit in receiver.hits_of("all") if hit.status == 503}
    assert retried_keys <= {key for (hook, key) in receiver.deliveries if hook == "all"}


async def listed_when(client: Client, query: str, ready: Callable[[dict[str, str]], bool]) -> dict[str, str]:
    """Workflow id -> type of every execution the query finds, once `ready` says visibility caught up."""
    for _ in range(100):
        found = {e.id: e.workflow_type async for e in client.list_workflows(query)}
        if ready(found):
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"{query!r} found {found}")
