"""Small steps the end-to-end tests share: what an app or a recording server would send."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError

from callrec.domain import signing
from callrec.domain.recording import RecordingState

SMALL = {"video": {"width": 320, "height": 180, "framerate": 10, "keyFrameInterval": 1}}
OCS = "/ocs/v2.php/apps/spreed/api/v1"


async def create_room(api: httpx.AsyncClient, name: str = "Weekly sync", **recording: Any) -> str:
    config = {"recording": {"encoding": SMALL} | recording}
    response = await api.post("/api/v1/rooms", json={"roomName": name, "config": config})
    assert response.status_code == 201, response.text
    room_id: str = response.json()["roomId"]
    return room_id


async def join(api: httpx.AsyncClient, room_id: str, *names: str) -> None:
    participants = [{"id": name.lower(), "name": name} for name in names]
    response = await api.put(f"/api/v1/rooms/{room_id}/call", json={"participants": participants})
    assert response.status_code == 200, response.text


async def wait_for_status(
    api: httpx.AsyncClient, recording_id: str, statuses: set[str], timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = await api.get(f"/api/v1/recordings/{recording_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] in statuses:
            return body
        assert time.monotonic() < deadline, f"still {body['status']} after {timeout} s: {body}"
        await asyncio.sleep(0.2)


async def record(api: httpx.AsyncClient, room_id: str, seconds: float = 1.5, **config: Any) -> dict[str, Any]:
    """Starts a recording, lets it run, stops it and waits until it is stored."""
    body: dict[str, Any] = {"roomId": room_id} | ({"config": config} if config else {})
    started = await api.post("/api/v1/recordings", json=body)
    assert started.status_code == 201, started.text
    recording_id = started.json()["recordingId"]
    await asyncio.sleep(seconds)
    stopped = await api.post(f"/api/v1/recordings/{recording_id}/stop")
    assert stopped.status_code == 202, stopped.text
    return await wait_for_status(api, recording_id, {"complete", "failed"})


async def backend_callback(api: httpx.AsyncClient, secret: str, kind: str, payload: dict[str, Any]) -> httpx.Response:
    """What a recording server sends to `/recording/backend`."""
    body = json.dumps({"type": kind, kind: payload}).encode()
    headers = signing.signed_headers(secret, body) | {"Content-Type": "application/json"}
    return await api.post(f"{OCS}/recording/backend", content=body, headers=headers)


async def upload(
    api: httpx.AsyncClient,
    secret: str,
    room_id: str,
    filename: str,
    content: bytes,
    recording_id: str | None = None,
    owner: str | None = "api-key",
) -> httpx.Response:
    """What a recording server sends to `/recording/{token}/store` (`owner`: who started the recording)."""
    data = ({"owner": owner} if owner is not None else {}) | ({"recordingId": recording_id} if recording_id else {})
    return await api.post(
        f"{OCS}/recording/{room_id}/store",
        headers=signing.signed_headers(secret, room_id.encode()),
        data=data,
        files={"file": (filename, content, "video/mp4")},
    )


async def member_headers(api: httpx.AsyncClient, room_id: str, name: str, role: str = "moderator") -> dict[str, str]:
    """Member token headers, got for the room's secret as an app would; send them without the API key."""
    room = (await api.get(f"/api/v1/rooms/{room_id}")).json()
    secret = room["moderatorSecret" if role == "moderator" else "speakerSecret"]
    response = await api.post(
        f"/api/v1/rooms/{room_id}/members/token", json={"secret": secret, "participantName": name}
    )
    assert response.status_code == 200, response.text
    return {"X-Room-Member-Token": response.json()["token"]}


def mp4_bytes(directory: Path, seconds: float = 1.0) -> bytes:
    """A real, small MP4 as a recording server would upload it."""
    from callrec.domain.layout import Layout, RenderSpec
    from callrec.media.render import render_file

    path = directory / f"clip-{seconds}.mp4"
    if not path.exists():
        spec = RenderSpec(width=160, height=90, framerate=5, video_bitrate_kbps=100)
        render_file(path, Layout.GRID, [("alice", "Alice")], spec, seconds)
    return path.read_bytes()


class PeakRss:
    """Samples this process's resident memory every few milliseconds while in use; `growth` is the peak above
    where it started. (tracemalloc is no use here: it crashes when Temporal's Rust threads allocate.)"""

    def __init__(self) -> None:
        self.start = self.peak = self._rss()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _sample(self) -> None:
        while not self._done.wait(0.005):
            self.peak = max(self.peak, self._rss())

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def growth(self) -> int:
        return self.peak - self.start


async def room_recording(api: httpx.AsyncClient, room_id: str) -> str:
    """The id of the room's recording that is starting (what a Talk recording server's start does not carry)."""
    listed = await api.get("/api/v1/recordings", params={"roomId": room_id, "status": "starting", "maxItems": 1})
    assert listed.status_code == 200, listed.text
    recording_id: str = listed.json()["recordings"][0]["recordingId"]
    return recording_id


async def outcome(handle: WorkflowHandle[Any, RecordingState]) -> RecordingState:
    """The recording's final state, checking how its workflow closed: a `failed` or `aborted` recording closes it as
    Failed, with a non-retryable application error whose type is the recording's `error` and whose message is its
    `details` (the state rides along as the error's details); any other ending completes it with the state."""
    try:
        state = RecordingState.model_validate(await handle.result())
    except WorkflowFailureError as err:
        cause = err.cause
        assert isinstance(cause, ApplicationError), cause
        assert cause.non_retryable
        state = RecordingState.model_validate(cause.details[0])
        assert state.status in ("failed", "aborted")
        assert (cause.type, cause.message) == (state.error, state.details)
        return state
    assert state.status not in ("failed", "aborted"), state
    return state


def stored_keys(room_id: str, recording_id: str, extension: str = "mp4") -> list[str]:
    """What storing a recording leaves in the object store, sorted: its file and the pictures made from it (poster
    and seek thumbnails of a video, the waveform of an audio-only recording)."""
    base = f"recordings/{room_id}/{recording_id}"
    pictures = ("waveform.png",) if extension == "ogg" else ("poster.jpg", "thumbs.jpg", "thumbs.vtt")
    return sorted([f"{base}.{extension}", *(f"{base}.{suffix}" for suffix in pictures)])


async def add_finished_recording(
    stack: Any, recording_id: str, key: str, chunks: AsyncIterator[bytes], size: int, **fields: Any
) -> None:
    """A finished recording put straight into `stack`'s store and catalog, no workflow: its file from `chunks`
    (`size` bytes) at `key`, its row `complete` in room "big" unless `fields` say otherwise."""
    from callrec.storage.rows import RecordingRow

    await stack.store.put_stream(key, chunks)
    row = {
        "room_id": "big",
        "room_name": "Big",
        "status": "complete",
        "layout": "grid",
        "encoding": "720p",
        "filename": f"{recording_id}.mp4",
        "creation_date": 0,
    }
    await stack.catalog.add_recording(
        RecordingRow(recording_id=recording_id, object_key=key, size=size, **(row | fields))
    )


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data
