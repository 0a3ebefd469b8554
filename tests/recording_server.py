"""A recording server the tests script by hand."""

from __future__ import annotations

import asyncio
import json

from quart import Quart, request

from callrec.domain import signing
from tests.conftest import SECRET, free_port


class ScriptedRecordingServer:
    """A recording server that accepts start/stop (checking their signatures) and does nothing else.

    The test then plays the recording server's part of the protocol by hand.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.requests: list[dict[str, object]] = []
        self.stop_status = 200  # what it answers to `stop`: 404 plays a recorder that lost the recording
        self.start_status = 200  # what it answers to `start`: 503 plays a recorder that cannot take it
        self.stop = asyncio.Event()
        app = Quart("scripted-recorder")

        @app.post("/api/v1/room/<token>")
        async def room(token: str) -> tuple[str, int]:
            raw = await request.get_data()
            random = request.headers.get(signing.RANDOM_HEADER)
            if not signing.verify(SECRET, random, request.headers.get(signing.CHECKSUM_HEADER), raw):
                return "bad checksum", 403
            message = json.loads(raw)
            self.requests.append({"token": token} | message)
            statuses = {"stop": self.stop_status, "start": self.start_status}
            return "{}", statuses.get(str(message.get("type")), 200)

        @app.get("/health")
        async def health() -> str:
            return "ok"

        self.app = app

    def count(self, kind: str) -> int:
        """How many `kind` requests (start, stop) reached it."""
        return sum(r["type"] == kind for r in self.requests)

    async def wait_for_count(self, kind: str, count: int) -> None:
        for _ in range(200):
            if self.count(kind) >= count:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{count} {kind} requests did not reach the recording server")

    async def wait_for(self, kind: str) -> dict[str, object]:
        for _ in range(200):
            found = [r for r in self.requests if r["type"] == kind]
            if found:
                return found[-1]
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {kind} request reached the recording server")
