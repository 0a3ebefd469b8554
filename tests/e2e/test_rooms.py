"""Rooms: listing, deleting with each recordings policy, config changes while recording, closed rooms."""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import StackFactory
from tests.helpers import create_room, join, record, wait_for_status


async def test_rooms_list_pages_through_every_room(stacks: StackFactory) -> None:
    stack = await stacks.start(recorder=False)
    created = {await create_room(stack.api, f"Room {i}") for i in range(7)}
    seen: list[str] = []
    token = None
    while True:
        params = {"maxItems": 3} | ({"nextPageToken": token} if token else {})
        page = (await stack.api.get("/api/v1/rooms", params=params)).json()
        seen += [room["roomId"] for room in page["rooms"]]
        assert page["pagination"]["maxItems"] == 3 and len(page["rooms"]) <= 3
        token = page["pagination"]["nextPageToken"]
        assert page["pagination"]["isTruncated"] == (token is not None)
        if token is None:
            break
    assert len(seen) == len(set(seen)) == 7 and set(seen) == created
    assert all("moderatorSecret" in room for room in page["rooms"])  # admins see the secrets

    tampered = token_of(await stack.api.get("/api/v1/rooms", params={"maxItems": 3}))
    tampered = tampered[:-2] + ("AA" if not tampered.endswith("AA") else "BB")
    bad = await stack.api.get("/api/v1/rooms", params={"nextPageToken": tampered})
    assert bad.status_code == 422 and bad.json()["details"][0]["field"] == "nextPageToken"
    assert (await stack.api.get("/api/v1/rooms", params={"nextPageToken": "!!!"})).status_code == 422
    assert (await stack.api.get("/api/v1/rooms", params={"maxItems": "zero"})).status_code == 422
    assert (await stack.api.get("/api/v1/rooms", params={"maxItems": 500})).json()["pagination"]["maxItems"] == 100


def token_of(response: httpx.Response) -> str:
    token: str = response.json()["pagination"]["nextPageToken"]
    return token


async def test_deleting_rooms_with_each_recordings_policy(stacks: StackFactory) -> None:
    stack = await stacks.start()
    api = stack.api
    empty = await create_room(api, "Empty")
    assert (await api.delete(f"/api/v1/rooms/{empty}")).status_code == 200
    assert (await api.get(f"/api/v1/rooms/{empty}")).status_code == 404
    assert (await api.delete(f"/api/v1/rooms/{empty}")).status_code == 404

    rooms = [await create_room(api, name) for name in ("Kept", "Forced", "Closed")]
    kept, forced, closed = rooms
    for room in rooms:
        await join(api, room, "Alice")
    recordings = await asyncio.gather(*(record(api, room) for room in rooms))
    by_room = {rec["roomId"]: rec["recordingId"] for rec in recordings}

    refused = await api.delete(f"/api/v1/rooms/{kept}")
    assert refused.status_code == 409 and refused.json()["error"] == "room_with_recordings_has_active_meeting"
    assert (await api.delete(f"/api/v1/rooms/{kept}", params={"withRecordings": "maybe"})).status_code == 422

    gone = await api.delete(f"/api/v1/rooms/{forced}", params={"withRecordings": "force", "withMeeting": "force"})
    assert gone.status_code == 200 and gone.json()["deletedRecordings"] == [by_room[forced]]
    assert gone.json()["successCode"] == "room_with_active_meeting_and_recordings_deleted"
    assert (await api.get(f"/api/v1/recordings/{by_room[forced]}")).status_code == 404
    assert await stack.store.list_keys(f"recordings/{forced}/") == []

    shut = await api.delete(f"/api/v1/rooms/{closed}", params={"withRecordings": "close"})
    assert shut.status_code == 200
    room = (await api.get(f"/api/v1/rooms/{closed}")).json()
    assert room["status"] == "closed"
    assert (await api.get(f"/api/v1/recordings/{by_room[closed]}/media")).status_code == 200  # still playable
    assert (await api.put(f"/api/v1/rooms/{closed}/call", json={"participants": [{"name": "A"}]})).status_code == 409
    assert (await api.post("/api/v1/recordings", json={"roomId": closed})).status_code == 409
    secret = room["moderatorSecret"]
    assert (await api.post(f"/api/v1/rooms/{closed}/members/token", json={"secret": secret})).status_code == 409


async def test_config_changes_wait_for_a_running_recording(stacks: StackFactory) -> None:
    stack = await stacks.start()
    api = stack.api
    room_id = await create_room(api)
    await join(api, room_id, "Alice")
    started = await api.post("/api/v1/recordings", json={"roomId": room_id})
    assert started.status_code == 201
    recording_id = started.json()["recordingId"]

    change = await api.put(f"/api/v1/rooms/{room_id}/config", json={"config": {"recording": {"layout": "speaker"}}})
    assert change.status_code == 409 and "layout" in change.json()["message"]
    same = await api.put(f"/api/v1/rooms/{room_id}/config", json={"config": {"recording": {"layout": "grid"}}})
    assert same.status_code == 200  # no change to what is being recorded
    unrelated = await api.put(
        f"/api/v1/rooms/{room_id}/config", json={"config": {"recording": {"publicAccess": False}}}
    )
    assert unrelated.status_code == 200
    assert (await api.delete(f"/api/v1/rooms/{room_id}", params={"withRecordings": "force"})).status_code == 409

    await api.post(f"/api/v1/recordings/{recording_id}/stop")
    await wait_for_status(api, recording_id, {"complete"})
    after = await api.put(f"/api/v1/rooms/{room_id}/config", json={"config": {"recording": {"layout": "speaker"}}})
    assert after.status_code == 200 and after.json()["recording"]["layout"] == "speaker"
    await record(api, room_id)


async def test_closing_a_room_while_recording_stops_and_stores_the_recording(stacks: StackFactory) -> None:
    stack = await stacks.start()
    api = stack.api
    room_id = await create_room(api)
    await join(api, room_id, "Alice")
    started = await api.post("/api/v1/recordings", json={"roomId": room_id})
    assert started.status_code == 201
    await asyncio.sleep(1)

    closed = await api.delete(f"/api/v1/rooms/{room_id}", params={"withRecordings": "close"})
    assert closed.status_code == 200, closed.text
    stored = await wait_for_status(api, started.json()["recordingId"], {"complete", "failed", "aborted"})
    assert stored["status"] == "complete" and stored["duration"] > 0.5
    assert (await api.get(f"/api/v1/rooms/{room_id}")).json()["status"] == "closed"
