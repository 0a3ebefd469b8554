"""Recording events reach webhook endpoints, signed, each once, even when the endpoint was down for a while."""

from __future__ import annotations

import asyncio
import json
import time

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
