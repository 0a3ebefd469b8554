"""The built-in recorder over HTTP, against a backend on loopback that checks and keeps what it is sent."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from quart import Quart, request

from callrec.domain import signing
from callrec.media.probe import probe_recording
from callrec.recorder.service import Recorder, StartBody, create_recorder_app
from callrec.servers import serve_app
from tests.conftest import SECRET, free_port, wait_until_up
from tests.helpers import OCS, SMALL


@dataclass
class Backend:
    """Plays the API's side: accepts signed callbacks and uploads."""

    port: int = field(default_factory=free_port)
    callbacks: list[dict[str, object]] = field(default_factory=list)
    uploads: list[tuple[str, bytes]] = field(default_factory=list)
    upload_fields: list[dict[str, str]] = field(default_factory=list)  # each upload's form fields but the file
    randoms: list[str] = field(default_factory=list)  # of every request received, retries too
    answers: dict[str, list[int]] = field(default_factory=dict)  # callback type -> statuses to answer first
    refused: list[tuple[str, int]] = field(default_factory=list)  # the callbacks answered so, in order
    watch: Path | None = None  # the recorder's directory: modes of its entries while an upload comes in
    modes_at_upload: dict[str, int] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> Quart:
        app = Quart("backend")

        @app.post(f"{OCS}/recording/backend")
        async def backend() -> tuple[str, int]:
            raw = await request.get_data()
            headers = request.headers
            self.randoms.append(headers.get(signing.RANDOM_HEADER, ""))
            if not signing.verify(
                SECRET, headers.get(signing.RANDOM_HEADER), headers.get(signing.CHECKSUM_HEADER), raw
            ):
                return "bad checksum", 403
            message = json.loads(raw)
            if queued := self.answers.get(message["type"]):
                self.refused.append((message["type"], queued[0]))
                return "{}", queued.pop(0)
            self.callbacks.append(message)
            return "{}", 200

        @app.post(f"{OCS}/recording/<token>/store")
        async def store(token: str) -> tuple[str, int]:
            headers = request.headers
            random, given = headers.get(signing.RANDOM_HEADER), headers.get(signing.CHECKSUM_HEADER)
            self.randoms.append(random or "")
            if not signing.verify(SECRET, random, given, token.encode()):
                return "bad checksum", 401
            if self.watch is not None:
                self.modes_at_upload = {p.name: p.stat().st_mode & 0o777 for p in [self.watch, *self.watch.iterdir()]}
            files, form = await request.files, await request.form
            self.uploads.append((files["file"].filename or "", files["file"].read()))
            self.upload_fields.append(dict(form))
            return "{}", 200

        @app.get("/health")
        async def health() -> str:
            return "ok"

        return app

    def kinds(self) -> list[str]:
        return [str(c["type"]) for c in self.callbacks]


@dataclass
class Running:
    backend: Backend
    recorder: Recorder
    url: str


@asynccontextmanager
async def run_recorder(
    workdir: Path, *backends: Backend, allowed: list[str] | None = None, **options: Any
) -> AsyncIterator[Running]:
    """The recorder app on loopback with the given backends (allowed: all of them, unless told)."""
    stop = asyncio.Event()
    port = free_port()
    async with httpx.AsyncClient(timeout=30) as http:
        urls = allowed if allowed is not None else [b.url for b in backends]
        recorder = Recorder(SECRET, urls, workdir, http, **options)
        tasks = [asyncio.create_task(serve_app(create_recorder_app(recorder), "127.0.0.1", port, stop.wait))]
        for backend in backends:
            app = backend.app()
            app.config["MAX_CONTENT_LENGTH"] = None
            tasks.append(asyncio.create_task(serve_app(app, "127.0.0.1", backend.port, stop.wait)))
            await wait_until_up(f"{backend.url}/health")
        await wait_until_up(f"http://127.0.0.1:{port}/health")
        try:
            yield Running(backends[0], recorder, f"http://127.0.0.1:{port}")
        finally:
            stop.set()
            await asyncio.gather(*tasks)


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    async with run_recorder(tmp_path / "work", Backend()) as running:
        yield running


def signed(body: dict[str, object], secret: str = SECRET, backend: str | None = None) -> tuple[bytes, dict[str, str]]:
    payload = json.dumps(body).encode()
    headers = signing.signed_headers(secret, payload)
    if backend is not None:
        headers[signing.BACKEND_HEADER] = backend
    return payload, headers


async def send(
    url: str, room: str, body: dict[str, object], secret: str = SECRET, backend: str | None = None
) -> httpx.Response:
    payload, headers = signed(body, secret, backend)
    async with httpx.AsyncClient() as http:
        return await http.post(f"{url}/api/v1/room/{room}", content=payload, headers=headers)


ACTOR = {"type": "users", "id": "alice"}


def start_body(recording_id: str) -> dict[str, object]:
    return {
        "type": "start",
        "start": {"status": 1, "owner": "alice", "actor": ACTOR, "recordingId": recording_id, "layout": "grid",
                  "encoding": SMALL, "participants": [{"name": "Alice"}]},
    }  # fmt: skip


async def until(condition: object, timeout: float = 20) -> None:
    for _ in range(int(timeout / 0.05)):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


async def test_start_then_stop_reports_and_uploads_a_playable_file(running: Running, tmp_path: Path) -> None:
    assert (await send(running.url, "room-1", start_body("rec-1"))).status_code == 200
    assert (await send(running.url, "room-1", start_body("rec-1"))).status_code == 200  # a retried start
    await until(lambda: "started" in running.backend.kinds())
    await asyncio.sleep(1)
    stop = {"type": "stop", "stop": {"recordingId": "rec-1"}}
    assert (await send(running.url, "room-1", stop)).status_code == 200

    await until(lambda: len(running.backend.uploads) == 1)
    assert running.backend.kinds() == ["started", "started", "stopped"]  # the retried start is told again
    started = running.backend.callbacks[0]["started"]
    assert started == {"token": "room-1", "recordingId": "rec-1", "status": 1, "actor": ACTOR}  # type: ignore[comparison-overlap]
    name, content = running.backend.uploads[0]
    assert re.fullmatch(r"Recording \d{4}-\d\d-\d\d \d\d-\d\d-\d\d\.mp4", name), name  # as Talk's server names it
    assert running.backend.upload_fields == [{"owner": "alice", "recordingId": "rec-1"}]
    path = tmp_path / "uploaded.mp4"
    path.write_bytes(content)
    info = probe_recording(path, "video")
    assert (info.width, info.height, info.video_codec) == (320, 180, "h264") and info.duration_s >= 0.9
    await until(lambda: not list((tmp_path / "work").iterdir()))  # the local copy is gone once uploaded


async def test_a_stop_right_after_the_start_still_ends_cleanly(running: Running) -> None:
    # The stop comes in the same event-loop turn as the start, while the encoder is still being opened.
    body = StartBody.model_validate(start_body("rec-2")["start"])
    await running.recorder.start("room-2", running.backend.url, body)
    session = running.recorder.find("room-2", "rec-2")
    assert session is not None
    await running.recorder.stop(session)

    await until(lambda: len(running.backend.uploads) == 1)
    assert running.backend.kinds() == ["started", "stopped"]
    await until(lambda: not any(t.name.startswith("recording:") for t in threading.enumerate()))
    assert running.recorder.sessions == {}


async def test_bad_requests_are_refused(running: Running) -> None:
    assert (await send(running.url, "room-3", start_body("rec-3"), secret="wrong")).status_code == 403
    unknown = await send(running.url, "room-3", {"type": "stop", "stop": {"recordingId": "nope"}})
    assert unknown.status_code == 404
    bad_layout = start_body("rec-4")
    bad_layout["start"]["layout"] = "mosaic"  # type: ignore[index]
    assert (await send(running.url, "room-3", bad_layout)).status_code == 400
    assert (await send(running.url, "room-3", {"type": "dance"})).status_code == 400
    assert running.recorder.sessions == {} and running.backend.callbacks == []


async def test_it_stands_in_for_the_talk_recording_server(running: Running, tmp_path: Path) -> None:
    """Talk's own requests: no recordingId, Talk's fields back, its file name, its checks in its order."""
    async with httpx.AsyncClient() as http:
        welcome = await http.get(f"{running.url}/api/v1/welcome")
    assert welcome.status_code == 200 and isinstance(welcome.json()["version"], str)
    talk_start = {"type": "start", "start": {"status": 2, "owner": "alice", "actor": ACTOR}}

    for start in ({"status": 2, "actor": ACTOR}, {"status": 2, "owner": "alice", "actor": {"id": "alice"}}):
        assert (await send(running.url, "room-4", {"type": "start", "start": start})).status_code == 400
    too_big = {"type": "start", "start": talk_start["start"] | {"padding": "x" * 1024}}
    assert (await send(running.url, "room-4", too_big)).status_code == 400  # its default maxmessagesize
    payload, headers = signed(talk_start)
    headers[signing.CHECKSUM_HEADER] = headers[signing.CHECKSUM_HEADER].upper()  # compared exactly
    async with httpx.AsyncClient() as http:
        assert (
            await http.post(f"{running.url}/api/v1/room/room-4", content=payload, headers=headers)
        ).status_code == 403
    assert running.recorder.sessions == {}

    assert (await send(running.url, "room-4", talk_start)).status_code == 200
    await until(lambda: running.backend.kinds() == ["started"])
    assert (await send(running.url, "room-4", talk_start)).status_code == 200  # one recording per token: nothing
    assert len(running.recorder.sessions) == 1
    await asyncio.sleep(1.2)
    assert (await send(running.url, "room-4", {"type": "stop", "stop": []})).status_code == 200
    await until(lambda: len(running.backend.uploads) == 1)
    assert running.backend.callbacks == [
        {"type": "started", "started": {"token": "room-4", "status": 2, "actor": ACTOR}},
        {"type": "stopped", "stopped": {"token": "room-4"}},
    ]  # Talk's fields only: no recordingId, no progress, nothing extra
    name, content = running.backend.uploads[0]
    assert re.fullmatch(r"Recording \d{4}-\d\d-\d\d \d\d-\d\d-\d\d\.ogg", name), name
    assert running.backend.upload_fields == [{"owner": "alice"}]
    (tmp_path / "audio.ogg").write_bytes(content)
    assert probe_recording(tmp_path / "audio.ogg", "audio").audio_codec == "opus"


async def test_a_started_that_cannot_be_delivered_drops_the_recording_with_failed(tmp_path: Path) -> None:
    backend = Backend(answers={"started": [503, 503, 503]})  # three tries, all refused
    async with run_recorder(tmp_path / "work", backend) as running:
        start = {"type": "start", "start": {"status": 1, "owner": "alice", "actor": ACTOR}}
        assert (await send(running.url, "room-5", start)).status_code == 200
        await until(lambda: backend.kinds() == ["failed"])
        assert [kind for kind, _ in backend.refused] == ["started"] * 3
        assert backend.callbacks == [{"type": "failed", "failed": {"token": "room-5"}}]
        await until(lambda: running.recorder.sessions == {} and not list((tmp_path / "work").iterdir()))
        assert (await send(running.url, "room-5", {"type": "stop", "stop": []})).status_code == 404
