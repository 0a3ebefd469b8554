"""Meet 3.8's wire shapes, headers and races (issue 17 themes 1, 2, 9), against the real stack.

A Talk-style scripted recording server plays the recorder, so the test decides when a recording leaves `starting`
and it stays `ending` (no upload comes): every race is deterministic, with no sleeps.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from callrec.api.app import create_app
from callrec.api.services import Services
from callrec.servers import serve_app
from tests.conftest import API_KEY, SECRET, Stack, StackFactory, free_port, wait_until_up
from tests.helpers import backend_callback, create_room, join, room_recording, wait_for_status
from tests.recording_server import ScriptedRecordingServer

ALWAYS = {"recordingId", "roomId", "roomName", "status"}
RECORDING_ERROR = "Recording Error"


def no_nulls(recording: dict[str, Any]) -> None:
    """Meet's typings: a field without a value is left out, never null."""
    assert ALWAYS <= set(recording), recording
    assert all(value is not None for value in recording.values()), recording


async def api_with(stacks: StackFactory, stack: Stack, **update: Any) -> httpx.AsyncClient:
    """Another API process on the same stack, with some settings changed."""
    settings = stack.settings.model_copy(update={"api_port": free_port(), **update})
    services = Services(settings=settings, catalog=stack.catalog, store=stack.store, temporal=stack.client)
    stacks.tasks.append(
        asyncio.create_task(serve_app(create_app(services), "127.0.0.1", settings.api_port, stacks.stop.wait))
    )
    base = f"http://127.0.0.1:{settings.api_port}"
    await wait_until_up(f"{base}/health")
    api = httpx.AsyncClient(base_url=base, headers={"X-API-KEY": API_KEY}, timeout=60)
    stacks.closers.append(api)
    return api


async def test_shapes_fields_location_and_races_answer_as_meet(
    stacks: StackFactory, scripted: ScriptedRecordingServer
) -> None:
    stack = await stacks.start(
        recorder=False,
        egress="talk",
        talk_recording_server=f"http://127.0.0.1:{scripted.port}",
        start_timeout_s=30,
        upload_timeout_s=120,
    )
    api = stack.api
    base = str(api.base_url).rstrip("/")
    room_id = await create_room(api)
    await join(api, room_id, "Alice")

    # Two starts at once: one waits for its recorder, the other is refused; one recording per room.
    first = asyncio.create_task(api.post("/api/v1/recordings", json={"roomId": room_id}))
    await scripted.wait_for_count("start", 1)
    second = await api.post("/api/v1/recordings", json={"roomId": room_id})
    assert second.status_code == 409
    assert second.json() == {"error": RECORDING_ERROR, "message": f"Room '{room_id}' is already being recorded"}

    # Starting: only what it has (no dates, duration, size or error), never null.
    starting_id = await room_recording(api, room_id)
    starting = (await api.get(f"/api/v1/recordings/{starting_id}")).json()
    no_nulls(starting)
    assert starting["status"] == "starting"
    assert not {"endDate", "duration", "size", "errorCode", "error", "details"} & set(starting), starting

    # Stop while starting: 409 in Meet's words, and it is ended all the same (its start answers 503).
    early = await api.post(f"/api/v1/recordings/{starting_id}/stop")
    assert early.status_code == 409
    assert early.json() == {
        "error": RECORDING_ERROR,
        "message": f"Recording '{starting_id}' cannot be stopped while starting",
    }
    assert (await first).status_code == 503
    aborted = await wait_for_status(api, starting_id, {"aborted"})
    no_nulls(aborted)
    assert isinstance(aborted["details"], str) and aborted["errorCode"] == 410

    # The room records again: 201 with an absolute Location, and no duration, end or size yet (as Meet's start).
    pending = asyncio.create_task(
        api.post("/api/v1/recordings", json={"roomId": room_id}, headers={"X-Forwarded-Host": "evil.example"})
    )
    await scripted.wait_for_count("start", 2)
    assert (await backend_callback(api, SECRET, "started", {"token": room_id, "status": 1})).is_success
    started = await pending
    assert started.status_code == 201, started.text
    body = started.json()
    recording_id = body["recordingId"]
    # X-Forwarded-Host from a peer that is not a trusted proxy is ignored.
    assert started.headers["Location"] == f"{base}/api/v1/recordings/{recording_id}"
    no_nulls(body)
    assert body["status"] == "active" and {"layout", "encoding", "filename", "startDate"} <= set(body)
    assert not {"duration", "endDate", "size"} & set(body), body

    # `fields` and `X-Fields` together: the union; a known field without a value yet selects nothing for it.
    get = f"/api/v1/recordings/{recording_id}"
    both = await api.get(get, params={"fields": "recordingId, nonsense"}, headers={"X-Fields": "status,recordingId"})
    assert both.json() == {"recordingId": recording_id, "status": "active"}
    assert (await api.get(get, params={"fields": "endDate"})).json() == {}
    assert set((await api.get(get, headers={"X-Fields": "nonsense"})).json()) == set(body)  # only unknown: all
    listed = await api.get(
        "/api/v1/recordings", params={"roomId": room_id, "fields": "status"}, headers={"X-Fields": "recordingId"}
    )
    assert {"recordingId": recording_id, "status": "active"} in listed.json()["recordings"]
    assert all(set(r) <= {"recordingId", "status"} for r in listed.json()["recordings"])

    # Stop: 202 `ending`, with the duration recorded so far and an absolute Location.
    stopped = await api.post(f"{get}/stop")
    assert stopped.status_code == 202, stopped.text
    assert stopped.headers["Location"] == f"{base}{get}"
    ending = stopped.json()
    no_nulls(ending)
    assert ending["status"] == "ending" and ending["endDate"] >= ending["startDate"]
    assert isinstance(ending["duration"], int | float) and ending["duration"] >= 0
    assert ending["duration"] == (ending["endDate"] - ending["startDate"]) / 1000
    fielded = await api.post(f"{get}/stop", params={"fields": "status"}, headers={"X-Fields": "duration"})

    # Stop again, delete while ending (one and bulk): 409s in Meet's words; nothing is lost.
    assert fielded.status_code == 409
    assert fielded.json() == {"error": RECORDING_ERROR, "message": f"Recording '{recording_id}' is already stopped"}
    refused = await api.delete(get)
    assert refused.status_code == 409
    assert refused.json() == {"error": RECORDING_ERROR, "message": f"Recording '{recording_id}' is not stopped yet"}
    bulk = await api.delete("/api/v1/recordings", params={"recordingIds": recording_id})
    assert bulk.status_code == 400
    assert bulk.json()["failed"] == [
        {"recordingId": recording_id, "error": f"Recording '{recording_id}' is not stopped yet"}
    ]
    still = (await api.get(get)).json()
    assert still["status"] == "ending" and "size" not in still
    assert (await api.get(get, params={"fields": "status,size"})).json() == {"status": "ending"}

    # Location's base: CALLREC_PUBLIC_URL wins (default port and trailing slash dropped); else the forwarded
    # scheme and host, only from a trusted proxy.
    public = await api_with(stacks, stack, public_url="https://rec.example.org:443/callrec/")
    made = await public.post("/api/v1/rooms", json={"roomName": "Public"}, headers={"X-Forwarded-Host": "a.example"})
    assert made.headers["Location"] == f"https://rec.example.org/callrec/api/v1/rooms/{made.json()['roomId']}"
    proxied = await api_with(stacks, stack, trusted_proxies=["127.0.0.0/8"])
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "spoofed.example, meet.example.org"}
    made = await proxied.post("/api/v1/rooms", json={"roomName": "Proxied"}, headers=forwarded)
    assert made.headers["Location"] == f"https://meet.example.org/api/v1/rooms/{made.json()['roomId']}"
    made = await api.post("/api/v1/rooms", json={"roomName": "Direct"}, headers=forwarded)
    assert made.headers["Location"] == f"{base}/api/v1/rooms/{made.json()['roomId']}"
