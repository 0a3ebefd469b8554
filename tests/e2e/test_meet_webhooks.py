"""Webhooks as OpenVidu Meet 3.8/3.9 sends them (issue 17, theme 8): its recording events in its order and with
its statuses, its room events, and a body a Meet receiver can check the signature of the way it does."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from typing import Any

from tests.conftest import SECRET, StackFactory, wait_until_up
from tests.helpers import backend_callback, create_room, join, record
from tests.integration.test_webhooks import Receiver


def js_stringify(value: Any) -> str:
    """What `JSON.stringify` makes of a parsed body (what a Meet receiver signs to compare)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


async def test_recording_and_meeting_events_as_meet_sends_them(stacks: StackFactory) -> None:
    receiver = Receiver()
    serving = asyncio.create_task(receiver.serve())
    await wait_until_up(f"http://127.0.0.1:{receiver.port}/health")
    try:
        everything = receiver.endpoint("all")
        failures_only = receiver.endpoint("failures", events=["recordingFailed"])  # the old event name
        meetings = receiver.endpoint("meetings", events=["meetingStarted", "meetingEnded"])
        stack = await stacks.start(webhooks=[everything, failures_only, meetings])
        api = stack.api
        room_id = await create_room(api, "Café sync")
        await join(api, room_id, "Alice")
        done = await record(api, room_id)
        assert done["status"] == "complete"
        assert (await api.delete(f"/api/v1/rooms/{room_id}/call")).status_code == 204
        # a second meeting, started by a WHIP publisher reaching the recorder (a second one joins it, no new meeting)
        for participant_id in ("cam-1", "cam-2"):
            participant = {"id": participant_id, "name": participant_id, "role": "speaker"}
            presence = {"token": room_id, "participant": participant, "state": "joined"}
            assert (await backend_callback(api, SECRET, "publisher", presence)).status_code == 200
        assert (await api.delete(f"/api/v1/rooms/{room_id}/call")).status_code == 204
        await join(api, room_id, "Bob")  # a third meeting, ended by deleting the room
        deleted = await api.delete(
            f"/api/v1/rooms/{room_id}", params={"withMeeting": "force", "withRecordings": "force"}
        )
        assert deleted.status_code == 200, deleted.text

        def delivered(hook: str) -> list[dict[str, Any]]:
            bodies = [json.loads(body) for (h, _), body in receiver.deliveries.items() if h == hook]
            return sorted(bodies, key=lambda b: b["creationDate"])

        deadline = time.monotonic() + 30
        while len([b for b in delivered("all") if b["event"].startswith(("recording", "meeting"))]) < 10:
            assert time.monotonic() < deadline, [b["event"] for b in delivered("all")]
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)  # nothing more should come
    finally:
        receiver.stop.set()
        await serving

    events = [b for b in delivered("all") if b["event"].startswith(("recording", "meeting"))]
    recording = [(b["event"], b["data"]["status"]) for b in events if b["event"].startswith("recording")]
    assert recording == [
        ("recordingStarted", "starting"),
        ("recordingUpdated", "active"),
        ("recordingUpdated", "ending"),
        ("recordingEnded", "complete"),
    ]
    ended = next(b["data"] for b in events if b["event"] == "recordingEnded")
    assert (ended["recordingId"], ended["size"], ended["roomName"]) == (done["recordingId"], done["size"], "Café sync")
    assert all(b["data"]["recordingId"] == done["recordingId"] for b in events if b["event"].startswith("recording"))

    meeting = [b for b in events if b["event"].startswith("meeting")]
    assert [b["event"] for b in meeting] == ["meetingStarted", "meetingEnded"] * 3
    for body in meeting:
        room = body["data"]
        assert room["roomId"] == room_id and room["roomName"] == "Café sync" and "config" in room
        assert "moderatorSecret" not in room and "speakerSecret" not in room  # receivers get no room secrets
    assert [b["event"] for b in delivered("meetings")] == [b["event"] for b in meeting]
    assert delivered("failures") == []  # nothing failed: the old filter gets failed recordings' recordingEnded only

    # Each request verifies as a Meet receiver verifies it: HMAC-SHA256 of `<X-Timestamp>.<JSON.stringify(body)>`.
    assert receiver.hits and all(hit.valid for hit in receiver.hits)
    for hit in receiver.hits:
        parsed = json.loads(hit.body)
        assert list(parsed) == ["event", "creationDate", "data"]
        assert hit.body == js_stringify(parsed).encode()
        secret = receiver.secrets[hit.hook]
        expected = hmac.new(secret.encode(), f"{hit.timestamp}.{js_stringify(parsed)}".encode(), hashlib.sha256)
        assert hmac.compare_digest(expected.hexdigest(), hit.signature)
