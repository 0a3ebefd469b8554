"""callrec as it runs in production, each part its own process, so the chaos tests can kill any of them.

Temporal dev server (persisted in SQLite, so it can restart), `callrec worker`, `callrec api` and
`callrec recorder` run as child processes with `CALLREC_*` settings; the test talks to them over HTTP and
reads the catalog and the object store directly to check what they left behind.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from callrec.dev import temporal_answers, temporal_argv, wait_for_temporal
from callrec.domain.settings import Settings
from callrec.storage.catalog import Catalog, migrate
from callrec.storage.objects import ObjectStore
from callrec.storage.rows import ChatMessageRow, NotificationRow
from callrec.storage.stores import make_store
from tests.conftest import API_KEY, PUBLISH_SECRET, SECRET, TOKEN_SECRET, free_port
from tests.helpers import SMALL

PARTS = ("worker", "api", "recorder")


class ChaosStack:
    def __init__(self, tmp_path: Path, *, recorder: bool = True, **overrides: object) -> None:
        self.parts = PARTS if recorder else tuple(p for p in PARTS if p != "recorder")
        self.logs = tmp_path / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        api_port, recorder_port = free_port(), free_port()
        values: dict[str, object] = {
            "data_dir": tmp_path / "data",
            "api_key": API_KEY,
            "token_secret": TOKEN_SECRET,
            "publish_secret": PUBLISH_SECRET,
            "recording_secret": SECRET,
            "temporal_address": f"127.0.0.1:{free_port()}",
            "temporal_ui_port": free_port(),
            "task_queue": f"chaos-{uuid.uuid4().hex[:8]}",
            "api_port": api_port,
            "api_url": f"http://127.0.0.1:{api_port}",
            "recorder_port": recorder_port,
            "recorder_url": f"http://127.0.0.1:{recorder_port}",
            "start_timeout_s": 60,
            "upload_timeout_s": 120,
            "share_offer_expiry_s": 3,
            "recorder_capacity": 50,  # several small recordings at once on one recorder
            "worker_metrics_port": free_port(),
            "temporal_metrics_port": free_port(),
        } | overrides
        self.settings = Settings(**values)  # type: ignore[arg-type]
        self.env = dict(os.environ) | {
            f"CALLREC_{name.upper()}": str(value) for name, value in values.items() if value is not None
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.api = httpx.AsyncClient(base_url=str(self.settings.api_url), headers={"X-API-KEY": API_KEY}, timeout=60)
        self.catalog = Catalog.from_url(self.settings.catalog_url)
        self.store: ObjectStore | None = None

    # processes
    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        log = (self.logs / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(argv, env=self.env | (env or {}), stdout=log, stderr=subprocess.STDOUT)

    async def start(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        await migrate(self.settings)
        self.store = await make_store(self.settings)
        for _ in range(3):
            if await self._first_temporal():
                break
            # Its port was taken between free_port() and its bind (another connection's ephemeral port), and it
            # exited: before any part knows its address, it takes other ports.
            address, ui_port = f"127.0.0.1:{free_port()}", free_port()
            self.settings = self.settings.model_copy(update={"temporal_address": address, "temporal_ui_port": ui_port})
            self.env |= {"CALLREC_TEMPORAL_ADDRESS": address, "CALLREC_TEMPORAL_UI_PORT": str(ui_port)}
        else:
            raise RuntimeError(f"Temporal did not start: {(self.logs / 'temporal.log').read_text()[-2000:]}")
        for part in self.parts:
            self.start_part(part)
        await self.wait_until_serving()

    async def start_temporal(self) -> None:
        self._spawn("temporal", [*temporal_argv(self.settings), "--headless"])
        await wait_for_temporal(self.settings)

    async def _first_temporal(self) -> bool:
        """Starts Temporal; False when it exited before it answered (it could not listen)."""
        self._spawn("temporal", [*temporal_argv(self.settings), "--headless"])
        process, deadline = self.processes["temporal"], time.monotonic() + 60
        while not await temporal_answers(self.settings):
            if process.poll() is not None:
                return False
            assert time.monotonic() < deadline, f"Temporal did not answer at {self.settings.temporal_address}"
            await asyncio.sleep(0.2)
        return True

    def start_part(self, name: str) -> None:
        self._spawn(name, [sys.executable, "-m", "callrec.cli", name])

    def start_another(self, part: str, name: str, **env: str) -> None:
        """One more process of `part` (a second API on another port, a second worker), named `name`."""
        self._spawn(name, [sys.executable, "-m", "callrec.cli", part], env)

    async def api_client(self, port: int) -> httpx.AsyncClient:
        client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers={"X-API-KEY": API_KEY}, timeout=60)
        deadline = time.monotonic() + 60
        while True:
            try:
                if (await client.get("/health")).status_code == 200:
                    return client
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"API on {port} did not come up; see {self.logs}"
            await asyncio.sleep(0.2)

    def kill(self, name: str) -> None:
        """kill -9: no cleanup, no goodbye."""
        process = self.processes.pop(name)
        process.kill()
        process.wait()

    def stop(self, name: str) -> None:
        process = self.processes.pop(name)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    async def wait_until_serving(self) -> None:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient() as http:
            urls = [f"{self.settings.api_url}/health"]
            if "recorder" in self.parts:
                urls.append(f"{self.settings.recorder_url}/health")
            for url in urls:
                while True:
                    try:
                        if (await http.get(url)).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    assert time.monotonic() < deadline, f"{url} did not come up; see {self.logs}"
                    await asyncio.sleep(0.2)

    async def close(self) -> None:
        for name in list(self.processes):
            if name != "temporal":
                self.stop(name)
        if "temporal" in self.processes:
            self.stop("temporal")
        await self.api.aclose()
        await self.catalog.close()

    # what the user sees
    async def room_in_a_call(self, name: str = "Chaos") -> str:
        response = await self.api.post(
            "/api/v1/rooms", json={"roomName": name, "config": {"recording": {"encoding": SMALL}}}
        )
        assert response.status_code == 201, response.text
        room_id: str = response.json()["roomId"]
        call = {"participants": [{"id": "alice", "name": "Alice", "role": "moderator"}]}
        assert (await self.api.put(f"/api/v1/rooms/{room_id}/call", json=call)).status_code == 200
        return room_id

    async def recording_of(self, room_id: str) -> dict[str, Any]:
        response = await self.api.get("/api/v1/recordings", params={"roomId": room_id})
        assert response.status_code == 200, response.text
        recordings: list[dict[str, Any]] = response.json()["recordings"]
        assert len(recordings) == 1, recordings
        return recordings[0]

    async def statuses(self, room_ids: list[str]) -> list[str]:
        return [(await self.recording_of(room_id))["status"] for room_id in room_ids]

    async def wait_for(self, room_ids: list[str], wanted: set[str], timeout: float = 120) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                found = [await self.recording_of(room_id) for room_id in room_ids]
                if all(r["status"] in wanted for r in found):
                    return found
            except httpx.HTTPError:
                found = []  # the API is down for a moment
            assert time.monotonic() < deadline, f"not all {wanted} after {timeout} s: {found}; logs in {self.logs}"
            await asyncio.sleep(0.3)

    # what was left behind
    async def notifications_of(self, recording_id: str, timeout: float = 60) -> list[str]:
        """The notifications of a recording once there are any: its status turns complete just before the owner
        is told, and a worker killed in between tells them when it is back."""
        for _ in range(int(timeout / 0.2)):
            async with self.catalog.sessions() as session:
                rows = await session.execute(
                    select(NotificationRow).where(NotificationRow.recording_id == recording_id)
                )
                subjects = [row.subject for row in rows.scalars()]
            if subjects:
                return subjects
            await asyncio.sleep(0.2)
        return []

    async def chat_of(self, room_id: str) -> list[str]:
        async with self.catalog.sessions() as session:
            rows = await session.execute(
                select(ChatMessageRow).where(ChatMessageRow.room_id == room_id).order_by(ChatMessageRow.message_id)
            )
            return [row.message for row in rows.scalars()]

    def run_cli(self, *args: str) -> str:
        """`callrec ...` as an operator runs it, with this stack's settings."""
        done = subprocess.run(
            [sys.executable, "-m", "callrec.cli", *args], env=self.env, capture_output=True, timeout=120, check=True
        )
        return done.stdout.decode()
