"""A stand-in for Nextcloud Talk's recording server (`nextcloud-talk-recording`), as Talk's own tests use a fake one.

It checks requests as its `Server.py` does (backend header, secret picked by backend URL, checksum, message size
limit, required keys, one recording per backend and token, 404 to a stop of an unknown recording) and keeps what it
got; a test then plays that server's callbacks and upload as its `BackendNotifier.py` sends them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from quart import Quart, request

from callrec.domain import signing
from callrec.servers import serve_app
from tests.conftest import SECRET, StackFactory, free_port, wait_until_up
from tests.helpers import OCS, backend_callback, create_room, join, wait_for_status

MAX_MESSAGE_SIZE = 1024  # the Talk recording server's default `maxmessagesize`
OCS_HEADERS = {"OCS-APIRequest": "true"}


@dataclass
class Received:
    token: str
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.raw)
        return body


@dataclass
class TalkRecordingServer:
    """Accepts start/stop as the Talk recording server does, keeping every request; records nothing."""

    port: int = field(default_factory=free_port)
    backends: dict[str, str] = field(default_factory=dict)  # backend URL (no trailing slash) -> secret
    received: list[Received] = field(default_factory=list)
    services: set[str] = field(default_factory=set)  # "{backend}-{token}", as Server.py keys recordings
    stopping: set[str] = field(default_factory=set)  # stopped, still uploading: a repeated stop is answered {}
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    start_answer: int = 200  # what it answers to a start (400: plays a server that refuses it)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> Quart:
        app = Quart("talk-recording-server")

        @app.post("/api/v1/room/<token>")
        async def room(token: str) -> tuple[str, int]:
            raw: bytes = await request.body
            headers = dict(request.headers)
            self.received.append(Received(token, headers, raw))
            backend = headers.get(signing.BACKEND_HEADER)
            secret = self.backends.get(backend.rstrip("/")) if backend else None
            random, checksum = headers.get(signing.RANDOM_HEADER), headers.get(signing.CHECKSUM_HEADER)
            if backend is None or secret is None or random is None or checksum is None:
                return "Forbidden", 403
            if not request.content_length or request.content_length > MAX_MESSAGE_SIZE:
                return "Bad Request", 400
            expected = hmac.new(secret.encode(), random.encode() + raw, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(checksum, expected):
                return "Forbidden", 403
            data = json.loads(raw)
            service = f"{backend}-{token}"
            if data.get("type") == "start":
                start = data.get("start")
                if not isinstance(start, dict) or "owner" not in start or "actor" not in start:
                    return "Bad Request", 400
                if "type" not in start["actor"] or "id" not in start["actor"]:
                    return "Bad Request", 400
                if self.start_answer != 200:
                    return "Bad Request", self.start_answer
                self.services.add(service)  # a repeated start is answered {} as well
                return "{}", 200
            if data.get("type") == "stop":
                if "stop" not in data:
                    return "Bad Request", 400
                if service in self.stopping:
                    return "{}", 200
                if service not in self.services:
                    return "Not Found", 404
                self.services.discard(service)
                self.stopping.add(service)
                return "{}", 200
            return "Internal Server Error", 500  # Server.py's handler returns nothing for other types

        @app.get("/api/v1/welcome")
        async def welcome() -> dict[str, str]:
            return {"version": "0.1"}

        return app

    def of_type(self, kind: str) -> list[Received]:
        return [r for r in self.received if r.body.get("type") == kind]

    async def wait_for(self, kind: str) -> Received:
        for _ in range(400):
            if found := self.of_type(kind):
                return found[-1]
            await asyncio.sleep(0.025)
        raise AssertionError(f"no {kind} request reached the Talk recording server")


@pytest.fixture
async def talk_server() -> AsyncIterator[TalkRecordingServer]:
    server = TalkRecordingServer()

    async def until_stopped() -> None:
        await server.stop.wait()

    task = asyncio.create_task(serve_app(server.app(), "127.0.0.1", server.port, until_stopped))
    await wait_until_up(f"{server.url}/api/v1/welcome")
    yield server
    server.stop.set()
    await task


def assert_signed(received: Received, public_url: str) -> None:
    """Checked here from the shared secret alone, not with callrec's signing module."""
    random = received.headers[signing.RANDOM_HEADER]
    assert len(random) >= 32  # what Talk's own /recording/backend demands of a random
    expected = hmac.new(SECRET.encode(), random.encode() + received.raw, hashlib.sha256).hexdigest()
    assert received.headers[signing.CHECKSUM_HEADER] == expected  # lowercase hex
    assert received.headers[signing.BACKEND_HEADER] == f"{public_url}/"  # Talk's base URL, with its slash
    assert received.headers["Content-Type"] == "application/json"


async def talk_stack(stacks: StackFactory, server: TalkRecordingServer) -> tuple[httpx.AsyncClient, str, str]:
    """A stack with egress=talk (and no built-in recorder) and a room with a call; its public URL."""
    api_port = free_port()
    public_url = f"http://localhost:{api_port}"  # not CALLREC_API_URL (127.0.0.1): the header must be this one
    server.backends[public_url] = SECRET
    stack = await stacks.start(
        recorder=False,
        egress="talk",
        talk_recording_server=f"{server.url}/",
        api_port=api_port,
        public_url=public_url,
    )
    room_id = await create_room(stack.api)
    await join(stack.api, room_id, "Alice", "Bob")
    return stack.api, room_id, public_url


async def room_status(api: httpx.AsyncClient, room_id: str) -> int:
    status: int = (await api.get(f"/api/v1/rooms/{room_id}")).json()["callRecording"]
    return status


async def until_room_status(api: httpx.AsyncClient, room_id: str, expected: int) -> None:
    for _ in range(200):
        if (await api.get(f"/api/v1/rooms/{room_id}")).json()["callRecording"] == expected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"callRecording never became {expected}")


async def talk_start(api: httpx.AsyncClient, server: TalkRecordingServer, room_id: str) -> dict[str, Any]:
    """A Talk-style start; the recording server reports `started` as its BackendNotifier does."""
    started = await api.post(f"{OCS}/recording/{room_id}", data={"status": "1"}, headers=OCS_HEADERS)
    assert started.status_code == 200, started.text
    assert await room_status(api, room_id) == 3  # the recording server took it: starting, once Talk answers
    start: dict[str, Any] = (await server.wait_for("start")).body["start"]
    callback = {"token": room_id, "status": start["status"], "actor": start["actor"]}
    assert (await backend_callback(api, SECRET, "started", callback)).status_code == 200
    assert await room_status(api, room_id) == 1  # at once, as Talk sets it on the callback
    listed = (await api.get("/api/v1/recordings", params={"roomId": room_id})).json()["recordings"]
    # The room's one recording in progress (earlier ones may share its start millisecond) becomes `active` once
    # its workflow took the callback's signal, a moment later.
    [recording_id] = [r["recordingId"] for r in listed if r["status"] in {"starting", "active"}]
    return await wait_for_status(api, recording_id, {"active"})
