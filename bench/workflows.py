"""Benchmarks of callrec's own overhead: deep listing pages, the start latency, the recording life cycle.

Every callrec part runs as its own process, as `make dev` and production run them: a Temporal dev server,
`callrec api` and `callrec worker`. The recording server is a scripted one
inside this process (`AutoRecorder`): it answers `start` and calls back `started` at once, and on `stop`
uploads a small pre-made MP4 through the API's `/store` endpoint and calls back `stopped`. So the numbers
are callrec's orchestration (API, catalog, Temporal workflow, activities, upload validation), not encoding.

* list_deep_page@sqlite, @postgresql: GET /recordings?maxItems=100 at page 500 of 100,000 rows (median),
  against page 1 (median);
* start_latency_p50: POST /recordings -> 201 minus the recorder's own start time (measured), against
  start_workflow + signal + result of a trivial workflow;
* lifecycle_throughput: recordings/s, 200 concurrent, start -> stop -> upload -> `complete`, against
  workflows/s of 200 concurrent bare workflows, each running as many no-op activities as a recording ran.

The Temporal dev server keeps its state in memory (CALLREC_BENCH_TEMPORAL_DB=file: in a SQLite file, as
`make dev` does; slower, and the same for callrec and the baselines). The start and life-cycle stack uses a
SQLite catalog, as `make dev` does (CALLREC_BENCH_STACK_DB=postgresql: a fresh PostgreSQL database, dropped
after; the server is CALLREC_BENCH_POSTGRES_URL or CALLREC_TEST_POSTGRES_URL, else the local test server).

`python -m bench.workflows [--full] [--workdir DIR]` runs them on their own and prints the numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity, workflow

# The benchmark's own workflows run in Temporal's sandbox (as callrec's do), which re-imports this module:
# everything it imports comes from outside.
with workflow.unsafe.imports_passed_through():
    import httpx
    from quart import Quart, request
    from sqlalchemy import func, insert, select, text
    from sqlalchemy.ext.asyncio import create_async_engine
    from temporalio.client import Client
    from temporalio.worker import Worker

    from bench.common import BenchResult, CpuMeter, PeakRss, free_port, profiled
    from bench.targets import target_of
    from callrec.api.ocs import OCS_BASE
    from callrec.dev import temporal_argv, wait_for_temporal
    from callrec.domain import signing
    from callrec.domain.settings import Settings
    from callrec.servers import serve_app
    from callrec.storage.catalog import create_schema, make_engine, migrate
    from callrec.storage.rows import RecordingRow

API_KEY = "bench-api-key-0123456789abcdef01234567"  # `callrec api` wants at least 32 characters
TOKEN_SECRET = "bench-token-secret-0123456789abcdef0123"
SECRET = "bench-recording-secret"
SMALL_ENCODING = {"video": {"width": 320, "height": 180, "framerate": 10, "keyFrameInterval": 1}}
DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True)
class Sizes:
    rows: int
    page: int
    page_reps: int
    start_samples: int
    recordings: int


QUICK = Sizes(rows=20_000, page=100, page_reps=15, start_samples=15, recordings=60)
FULL = Sizes(rows=100_000, page=500, page_reps=30, start_samples=50, recordings=200)


def ms(seconds: float) -> float:
    return seconds * 1000.0


def median_ms(samples: list[float]) -> float:
    return ms(statistics.median(samples))


# --------------------------------------------------------------------------------------------------------------
# processes


class Processes:
    """Temporal dev server, `callrec api`, `callrec worker` as child processes; logs under `workdir/logs`."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.temporal_address = f"127.0.0.1:{free_port()}"

    def settings_env(self, **values: object) -> dict[str, str]:
        return dict(os.environ) | {f"CALLREC_{k.upper()}": str(v) for k, v in values.items() if v is not None}

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.children[name] = process
        return process

    async def start_temporal(self) -> None:
        settings = Settings(
            data_dir=self.workdir / "temporal",
            temporal_address=self.temporal_address,
            temporal_ui_port=free_port(),
        )
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [*temporal_argv(settings), "--headless"]
        self.temporal_store = "SQLite file" if os.environ.get("CALLREC_BENCH_TEMPORAL_DB") == "file" else "in memory"
        if self.temporal_store == "in memory":
            at = argv.index("--db-filename")
            del argv[at : at + 2]
        self.spawn("temporal", argv, dict(os.environ))
        await wait_for_temporal(settings)

    def callrec(self, name: str, part: str, **values: object) -> subprocess.Popen[bytes]:
        return self.spawn(name, [sys.executable, "-m", "callrec.cli", part], self.settings_env(**values))

    def stop(self, name: str) -> None:
        process = self.children.pop(name, None)
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def close(self) -> None:
        for name in [n for n in self.children if n != "temporal"]:
            self.stop(name)
        self.stop("temporal")


async def wait_healthy(base_url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Until the API serves: its `/health` answers 200, or 503 with only the worker or the recorder down (an API
    measured on its own has neither)."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as http:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{base_url}: the process exited with {process.returncode}")
            try:
                answer = await http.get(f"{base_url}/health", headers={"X-API-KEY": API_KEY})
                body = answer.json() if answer.status_code in (200, 503) else {}
                down = {name for name, part in body.items() if isinstance(part, dict) and part.get("status") != "up"}
                if answer.status_code == 200 or (body and down <= {"worker", "recorder"}):
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{base_url} did not come up")
            await asyncio.sleep(0.1)


def api_client(base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"X-API-KEY": API_KEY},
        timeout=120,
        limits=httpx.Limits(max_connections=500, max_keepalive_connections=500),
    )


# --------------------------------------------------------------------------------------------------------------
# list_deep_page


def seed_rows(count: int, now_ms: int) -> list[dict[str, Any]]:
    """`count` recordings of 500 rooms, newest every 1-3 s back; 2 % failed before starting (NULL dates)."""
    rng = random.Random(42)
    rooms = [f"weekly-sync-{i:03d}-{secrets.token_hex(4)}" for i in range(500)]
    participants = [{"id": "alice", "name": "Alice", "role": "moderator"}, {"id": "bob", "name": "Bob"}]
    rows = []
    start = now_ms
    for i in range(count):
        room_id = rooms[i % len(rooms)]
        recording_id = f"{room_id}--EG_{secrets.token_urlsafe(9)}--{secrets.token_hex(3)}"
        start -= rng.randint(1000, 3000)
        failed = rng.random() < 0.02
        duration = None if failed else round(rng.uniform(5, 3600), 3)
        rows.append(
            {
                "recording_id": recording_id,
                "room_id": room_id,
                "room_name": f"Weekly sync {i % len(rooms)}",
                "status": "failed" if failed else "complete",
                "kind": "video",
                "layout": "grid",
                "encoding": "H264_720P_30",
                "filename": f"{recording_id}.mp4",
                "start_date": None if failed else start,
                "end_date": start + int((duration or 0) * 1000),
                "duration": duration,
                "size": None if failed else rng.randint(100_000, 500_000_000),
                "error_code": 500 if failed else None,
                "error": "egress_unavailable" if failed else None,
                "details": "The recorder could not be started." if failed else None,
                "object_key": None if failed else f"recordings/{room_id}/{recording_id}.mp4",
                "sha256": None if failed else secrets.token_hex(32),
                "media": None if failed else {"container": "mp4", "video": "h264", "audio": "aac"},
                "seq": start,
                "owner": "alice",
                "egress_id": None,
                "participants": participants,
                "public_secret": secrets.token_urlsafe(24),
                "private_secret": secrets.token_urlsafe(24),
                "creation_date": start - 500,
            }
        )
    return rows


async def seed_catalog(url: str, count: int) -> float:
    """Creates the schema and bulk-inserts `count` rows (SQLAlchemy core, batches of 5,000); seconds taken."""
    engine = make_engine(url)
    try:
        await create_schema(engine)
        began = time.perf_counter()
        rows = seed_rows(count, int(time.time() * 1000))
        async with engine.begin() as conn:
            for start in range(0, len(rows), 5000):
                await conn.execute(insert(RecordingRow), rows[start : start + 5000])
        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE"))  # the statistics a live catalog has (autovacuum, or never needed)
        return time.perf_counter() - began
    finally:
        await engine.dispose()


def postgres_server() -> str:
    server = os.environ.get("CALLREC_BENCH_POSTGRES_URL") or os.environ.get("CALLREC_TEST_POSTGRES_URL")
    return server or DEFAULT_POSTGRES


@contextlib.asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database for this run (its URL), dropped afterwards."""
    server = postgres_server()
    name = f"callrec_bench_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield server.rsplit("/", 1)[0] + f"/{name}"
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


async def timed_get(api: httpx.AsyncClient, params: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    began = time.perf_counter()
    response = await api.get("/api/v1/recordings", params=params)
    elapsed = time.perf_counter() - began
    if response.status_code != 200:
        raise RuntimeError(f"GET /recordings answered {response.status_code}: {response.text[:300]}")
    return elapsed, response.json()


async def deep_page(procs: Processes, database: str, sizes: Sizes, quick: bool) -> BenchResult:
    name = f"list_deep_page@{database}"
    target = "<= 1.2x"
    async with contextlib.AsyncExitStack() as stack:
        if database == "sqlite":
            directory = procs.workdir / "deep-sqlite"
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "catalog.db").unlink(missing_ok=True)
            url = f"sqlite+aiosqlite:///{(directory / 'catalog.db').resolve()}"
        else:
            try:
                url = await stack.enter_async_context(postgres_database())
            except Exception as exc:  # noqa: BLE001  # no PostgreSQL here: say so rather than fail the whole run
                return BenchResult(name, float("nan"), None, "ms", "lower", target, f"PostgreSQL unavailable: {exc!r}")
        seed_s = await seed_catalog(url, sizes.rows)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        process = procs.callrec(
            f"api-deep-{database}",
            "api",
            data_dir=procs.workdir / f"deep-{database}",
            database_url=url,
            api_key=API_KEY,
            token_secret=TOKEN_SECRET,
            recording_secret=SECRET,
            temporal_address=procs.temporal_address,
            api_port=port,
            api_url=base,
        )
        stack.callback(procs.stop, f"api-deep-{database}")
        await wait_healthy(base, process)
        async with api_client(base) as api:
            first = {"maxItems": 100}
            for _ in range(3):  # warm-up: connections, caches
                await timed_get(api, first)
            # walk to the deep page with nextPageToken, as a client does
            walk: list[float] = []
            token = None
            deep_params: dict[str, Any] = {}
            for number in range(1, sizes.page + 1):
                params = first | ({"nextPageToken": token} if token else {})
                elapsed, body = await timed_get(api, params)
                walk.append(elapsed)
                if len(body["recordings"]) != 100:
                    raise RuntimeError(f"page {number} has {len(body['recordings'])} rows")
                if number == sizes.page:
                    deep_params = params
                token = body["pagination"]["nextPageToken"]
            page_1: list[float] = []
            page_n: list[float] = []
            for _ in range(sizes.page_reps):  # interleaved, so drift hits both alike
                page_1.append((await timed_get(api, first))[0])
                page_n.append((await timed_get(api, deep_params))[0])
    note = (
        f"{sizes.rows:,} rows ({'QUICK: fewer rows, page ' + str(sizes.page) if quick else 'full'}), "
        f"median of {sizes.page_reps} GETs each of page 1 and page {sizes.page} (maxItems=100, through the API "
        f"process, reached with nextPageToken); p90 page {sizes.page} "
        f"{ms(statistics.quantiles(page_n, n=10)[-1]):.1f} ms; walk of {sizes.page} pages median "
        f"{median_ms(walk):.1f} ms/page; seeded in {seed_s:.1f} s"
    )
    return BenchResult(name, median_ms(page_n), median_ms(page_1), "ms", "lower", target, note)


# --------------------------------------------------------------------------------------------------------------
# the scripted recording server


UPLOAD_ATTEMPTS = 30


@dataclass
class AutoRecorder:
    """A recording server that answers at once: `start` -> `started` callback; `stop` -> upload + `stopped`.

    `recorder_s[room_id]` is its own start time: from receiving `start` to sending `started`.
    """

    mp4: bytes
    port: int = field(default_factory=free_port)
    recorder_s: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    stop_event: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.http = httpx.AsyncClient(
            timeout=120, limits=httpx.Limits(max_connections=500, max_keepalive_connections=500)
        )
        app = Quart("bench-recorder")

        @app.post("/api/v1/room/<token>")
        async def room(token: str) -> tuple[str, int]:
            received = time.perf_counter()
            raw: bytes = await request.body
            if not signing.verify(
                SECRET, request.headers.get(signing.RANDOM_HEADER), request.headers.get(signing.CHECKSUM_HEADER), raw
            ):
                return "bad checksum", 403
            backend = (request.headers.get(signing.BACKEND_HEADER) or "").rstrip("/")
            message = json.loads(raw)
            kind = message.get("type")
            body = message.get(kind) or {}
            # Talk's start names no recording (callrec's own recorder does): a callback without one means the room's
            recording_id = body.get("recordingId")
            if kind == "start":
                self._later(self._started(backend, token, recording_id, received))
                self.owners[token] = str(body.get("owner") or "api-key")
            elif kind == "stop":
                self._later(self._stopped(backend, token, recording_id))
            return "{}", 200

        @app.get("/health")
        async def health() -> str:
            return "ok"

        self.app = app
        self.owners: dict[str, str] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _later(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _callback(self, backend: str, kind: str, payload: dict[str, Any], before: Callable[[], None]) -> None:
        body = json.dumps({"type": kind, kind: payload}).encode()
        headers = signing.signed_headers(SECRET, body) | {"Content-Type": "application/json"}
        before()
        response = await self.http.post(f"{backend}{OCS_BASE}/recording/backend", content=body, headers=headers)
        if response.status_code != 200:
            self.errors.append(f"{kind} callback: {response.status_code} {response.text[:200]}")

    async def _started(self, backend: str, token: str, recording_id: str | None, received: float) -> None:
        def sent() -> None:
            self.recorder_s[token] = time.perf_counter() - received

        await self._callback(backend, "started", {"token": token} | _named(recording_id), sent)

    async def _stopped(self, backend: str, token: str, recording_id: str | None) -> None:
        data = {"owner": self.owners.get(token) or "api-key"} | _named(recording_id)
        answer = "never sent"
        for _ in range(UPLOAD_ATTEMPTS):  # 503 is the API's "try again" (busy, or the stop not yet through)
            try:
                response = await self.http.post(
                    f"{backend}{OCS_BASE}/recording/{token}/store",
                    headers=signing.signed_headers(SECRET, token.encode()),
                    data=data,
                    files={"file": ("call.mp4", self.mp4, "video/mp4")},
                )
            except httpx.HTTPError as exc:  # counted: a connection the API dropped is a finding, then tried again
                self.errors.append(f"upload: {exc!r}")
                await asyncio.sleep(1)
                continue
            answer = f"{response.status_code} {response.text[:200]}"
            if response.status_code != 503:
                break
            await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
        if not answer.startswith("200"):
            self.errors.append(f"upload: {answer}")
        await self._callback(backend, "stopped", {"token": token} | _named(recording_id), lambda: None)

    async def __aenter__(self) -> AutoRecorder:
        async def until_stopped() -> None:
            await self.stop_event.wait()

        self.server = asyncio.create_task(serve_app(self.app, "127.0.0.1", self.port, until_stopped))
        deadline = time.monotonic() + 30
        while True:
            try:
                if (await self.http.get(f"{self.url}/health")).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the scripted recording server did not come up")
            await asyncio.sleep(0.05)

    async def __aexit__(self, *_: object) -> None:
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=30)
        self.stop_event.set()
        await self.server
        await self.http.aclose()


def _named(recording_id: str | None) -> dict[str, str]:
    return {"recordingId": recording_id} if recording_id else {}


def small_mp4(directory: Path) -> bytes:
    """A real 1 s MP4 (160x90, 5 fps), as a recording server would upload it (tests/helpers.py mp4_bytes)."""
    from callrec.domain.layout import Layout, RenderSpec
    from callrec.media.render import render_file

    path = directory / "clip.mp4"
    if not path.exists():
        spec = RenderSpec(width=160, height=90, framerate=5, video_bitrate_kbps=100)
        render_file(path, Layout.GRID, [("alice", "Alice")], spec, 1.0)
    return path.read_bytes()


# --------------------------------------------------------------------------------------------------------------
# the baselines: bare Temporal, a worker in this process on its own task queue


@workflow.defn(sandboxed=True)
class WaitForSignal:
    """Starts, waits for `go`, returns."""

    def __init__(self) -> None:
        self.go_received = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self.go_received)

    @workflow.signal
    def go(self) -> None:
        self.go_received = True


@activity.defn
async def noop() -> None:
    return None


@workflow.defn(sandboxed=True)
class ActivityChain:
    """Runs `count` no-op activities one after the other, as a recording runs its own; the last `local` of
    them as local activities."""

    @workflow.run
    async def run(self, count: int, local: int = 0) -> None:
        for i in range(count):
            if i >= count - local:
                await workflow.execute_local_activity(noop, start_to_close_timeout=timedelta(seconds=60))
            else:
                await workflow.execute_activity(noop, start_to_close_timeout=timedelta(seconds=60))


async def direct_start(client: Client, task_queue: str) -> float:
    """start_workflow + signal + result of a workflow that only waits for the signal; seconds."""
    began = time.perf_counter()
    handle = await client.start_workflow(WaitForSignal.run, id=f"direct-{uuid.uuid4().hex}", task_queue=task_queue)
    await handle.signal(WaitForSignal.go)
    await handle.result()
    return time.perf_counter() - began


async def direct_throughput(
    client: Client, task_queue: str, count: int, activities: int, local: int = 0
) -> tuple[float, str]:
    """Workflows per second of `count` concurrent `ActivityChain`s, and the id of one of them."""
    ids = [f"chain-{uuid.uuid4().hex}" for _ in range(count)]

    async def one(workflow_id: str) -> None:
        await client.execute_workflow(
            ActivityChain.run, args=[activities, local], id=workflow_id, task_queue=task_queue
        )

    began = time.perf_counter()
    await asyncio.gather(*(one(workflow_id) for workflow_id in ids))
    return count / (time.perf_counter() - began), ids[0]


# --------------------------------------------------------------------------------------------------------------
# start_latency_p50 and lifecycle_throughput


async def new_room(api: httpx.AsyncClient, name: str) -> str:
    config = {"recording": {"encoding": SMALL_ENCODING}}
    response = await api.post("/api/v1/rooms", json={"roomName": name, "config": config})
    if response.status_code != 201:
        raise RuntimeError(f"POST /rooms answered {response.status_code}: {response.text[:300]}")
    room_id: str = response.json()["roomId"]
    call = {"participants": [{"id": "alice", "name": "Alice", "role": "moderator"}]}
    response = await api.put(f"/api/v1/rooms/{room_id}/call", json=call)
    if response.status_code != 200:
        raise RuntimeError(f"PUT call answered {response.status_code}: {response.text[:300]}")
    return room_id


async def rooms(api: httpx.AsyncClient, count: int, prefix: str) -> list[str]:
    gate = asyncio.Semaphore(16)

    async def one(i: int) -> str:
        async with gate:
            return await new_room(api, f"{prefix} {i}")

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def start_recording(api: httpx.AsyncClient, room_id: str) -> str:
    response = await api.post("/api/v1/recordings", json={"roomId": room_id})
    if response.status_code != 201:
        raise RuntimeError(f"POST /recordings answered {response.status_code}: {response.text[:300]}")
    recording_id: str = response.json()["recordingId"]
    return recording_id


async def activities_until_complete(client: Client, recording_id: str) -> tuple[dict[str, int], int]:
    """The activities (by type; local ones as `local:<type>`) the recording's workflow ran up to and including
    the `complete` projection, and how many history events it had by then."""
    history = await client.get_workflow_handle(recording_id).fetch_history()
    by_type: dict[str, int] = {}
    completing = False
    events = 0
    for event in history.events:
        events += 1
        if event.HasField("upsert_workflow_search_attributes_event_attributes"):
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
            completing = any(b"complete" in payload.data for payload in fields.values())
        elif event.HasField("activity_task_scheduled_event_attributes"):
            kind = event.activity_task_scheduled_event_attributes.activity_type.name
            by_type[kind] = by_type.get(kind, 0) + 1
            if completing:
                break
        elif event.marker_recorded_event_attributes.marker_name == "core_local_activity":
            data = event.marker_recorded_event_attributes.details["data"].payloads[0].data
            kind = "local:" + json.loads(data)["activity_type"]
            by_type[kind] = by_type.get(kind, 0) + 1
            if completing:
                break
    return by_type, events


async def whole_history(client: Client, recording_id: str) -> str:
    """The closed workflow's whole history: its events, workflow tasks, activities and local activities."""
    handle = client.get_workflow_handle(recording_id)
    with contextlib.suppress(Exception):  # a recording that ends failed closes its workflow as Failed
        await asyncio.wait_for(handle.result(), 60)
    events = (await handle.fetch_history()).events
    tasks = sum(1 for event in events if event.HasField("workflow_task_completed_event_attributes"))
    scheduled = sum(1 for event in events if event.HasField("activity_task_scheduled_event_attributes"))
    local = sum(1 for e in events if e.marker_recorded_event_attributes.marker_name == "core_local_activity")
    return f"{len(events)} events, {tasks} workflow tasks, {scheduled} activities, {local} local activities"


async def terminal_counts(engine: Any, recording_ids: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    async with engine.connect() as conn:
        for start in range(0, len(recording_ids), 500):
            found = await conn.execute(
                select(RecordingRow.status, func.count())
                .where(RecordingRow.recording_id.in_(recording_ids[start : start + 500]))
                .group_by(RecordingRow.status)
            )
            for status, count in found:
                counts[status] = counts.get(status, 0) + count
    return counts


async def recording_stack(procs: Processes, sizes: Sizes, quick: bool) -> list[BenchResult]:
    directory = procs.workdir / "stack"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "catalog.db").unlink(missing_ok=True)
    mp4 = asyncio.create_task(asyncio.to_thread(small_mp4, procs.workdir))
    database = os.environ.get("CALLREC_BENCH_STACK_DB", "sqlite")
    async with contextlib.AsyncExitStack() as stack:
        database_url = await stack.enter_async_context(postgres_database()) if database == "postgresql" else None
        results = await _recording_stack(procs, sizes, quick, directory, await mp4, database_url)
    for result in results:
        result.note += f"; catalog: {database}, Temporal dev server: {procs.temporal_store}"
    return results


async def _recording_stack(
    procs: Processes, sizes: Sizes, quick: bool, directory: Path, mp4: bytes, database_url: str | None
) -> list[BenchResult]:
    task_queue = f"bench-{uuid.uuid4().hex[:8]}"
    api_port = free_port()
    base = f"http://127.0.0.1:{api_port}"
    values: dict[str, object] = {
        "data_dir": directory,
        "api_key": API_KEY,
        "token_secret": TOKEN_SECRET,
        "recording_secret": SECRET,
        "temporal_address": procs.temporal_address,
        "task_queue": task_queue,
        "api_port": api_port,
        "api_url": base,
        "start_timeout_s": 120,
        "upload_timeout_s": 300,
        "share_offer_expiry_s": 3600,  # the offer stays open: its expiry is after `complete`, not part of the figure
        "database_url": database_url,
        "egress": "talk",  # the scripted recording server below (the default is the built-in recorders' pool)
        "worker_metrics_port": 0,  # no metrics servers: their fixed ports may be taken by another stack
        "temporal_metrics_port": 0,
    }
    settings = Settings(**values)  # type: ignore[arg-type]
    await migrate(settings)
    recorder = AutoRecorder(mp4)
    values["talk_recording_server"] = recorder.url
    results: list[BenchResult] = []
    async with recorder:
        worker = procs.callrec("worker", "worker", **values)
        api_process = procs.callrec("api", "api", **values)
        client = await Client.connect(procs.temporal_address)
        direct_queue = f"bench-direct-{uuid.uuid4().hex[:8]}"
        direct_worker = Worker(
            client, task_queue=direct_queue, workflows=[WaitForSignal, ActivityChain], activities=[noop]
        )
        engine = make_engine(settings.catalog_url)
        try:
            await wait_healthy(base, api_process)
            async with api_client(base) as api, direct_worker:
                results.append(await start_latency(api, recorder, client, direct_queue, sizes, quick))
                pids = {
                    "temporal": procs.children["temporal"].pid,
                    "worker": worker.pid,
                    "api": api_process.pid,
                    "load generator + scripted recorder": os.getpid(),
                }
                results.append(await lifecycle(api, recorder, client, direct_queue, engine, pids, sizes, quick))
        finally:
            await engine.dispose()
            procs.stop("api")
            procs.stop("worker")
    if recorder.errors:
        results[-1].note += f"; scripted recorder saw {len(recorder.errors)} errors, first: {recorder.errors[0]}"
    return results


async def start_latency(
    api: httpx.AsyncClient, recorder: AutoRecorder, client: Client, direct_queue: str, sizes: Sizes, quick: bool
) -> BenchResult:
    room_ids = await rooms(api, sizes.start_samples + 3, "Start latency")
    totals: list[float] = []
    recorder_times: list[float] = []
    direct: list[float] = []
    for i, room_id in enumerate(room_ids):  # ours and direct alternately: background load hits both alike
        began = time.perf_counter()
        await start_recording(api, room_id)
        elapsed = time.perf_counter() - began
        bare = await direct_start(client, direct_queue)
        if i >= 3:  # the first ones warm up (workflow cache, connections)
            totals.append(elapsed)
            recorder_times.append(recorder.recorder_s.get(room_id, 0.0))
            direct.append(bare)
    ours = [t - r for t, r in zip(totals, recorder_times, strict=True)]
    note = (
        f"{sizes.start_samples} sequential starts after 3 warm-ups{' (QUICK)' if quick else ''}, alternating "
        f"with the direct ones; ours = POST "
        f"/recordings -> 201 (API, catalog, RecordingWorkflow, start_egress, `started` callback -> signal, "
        f"project_recording) minus the recorder's own start time (median {ms(statistics.median(recorder_times)):.3f} "
        f"ms: a scripted server that calls back `started` at once); raw POST median {median_ms(totals):.1f} ms, "
        f"p90 {ms(statistics.quantiles(ours, n=10)[-1]):.1f} ms; direct = start_workflow + signal + result of a "
        f"trivial workflow (in-process worker), p90 {ms(statistics.quantiles(direct, n=10)[-1]):.1f} ms"
    )
    return BenchResult(
        "start_latency_p50", median_ms(ours), median_ms(direct), "ms", "lower", target_of("start_latency_p50"), note
    )


async def lifecycle(
    api: httpx.AsyncClient,
    recorder: AutoRecorder,
    client: Client,
    direct_queue: str,
    engine: Any,
    pids: dict[str, int],
    sizes: Sizes,
    quick: bool,
) -> BenchResult:
    count = sizes.recordings
    room_ids = await rooms(api, count + 1, "Lifecycle")
    # one recording first, alone: warms the worker up, and tells how many activities a recording runs
    warm_up = await start_recording(api, room_ids.pop())
    await api.post(f"/api/v1/recordings/{warm_up}/stop")
    while (await terminal_counts(engine, [warm_up])).get("complete", 0) == 0:
        await asyncio.sleep(0.05)
    by_type, events = await activities_until_complete(client, warm_up)
    activities = sum(by_type.values())
    local = sum(n for kind, n in by_type.items() if kind.startswith("local:"))
    cpu = CpuMeter({name: pids[name] for name in ("temporal", "load generator + scripted recorder")})
    cpu.start()
    direct_before, chain_id = await direct_throughput(client, direct_queue, count, activities)
    cpu_direct = cpu.stop()
    rss = PeakRss(pids["worker"], interval=0.02)
    rss.__enter__()
    cpu = CpuMeter(pids)
    cpu.start()
    failures: list[str] = []

    async def one(room_id: str) -> str | None:
        try:
            recording_id = await start_recording(api, room_id)
            response = await api.post(f"/api/v1/recordings/{recording_id}/stop")
            if response.status_code != 202:
                raise RuntimeError(f"stop answered {response.status_code}: {response.text[:200]}")
            return recording_id
        except Exception as exc:  # noqa: BLE001  # counted and reported
            failures.append(repr(exc))
            return None

    with profiled(pids["worker"], "worker-lifecycle"), profiled(pids["api"], "api-lifecycle"):
        began = time.perf_counter()
        started = [r for r in await asyncio.gather(*(one(room_id) for room_id in room_ids)) if r is not None]
        all_started = time.perf_counter() - began
        deadline = time.monotonic() + 600
        while True:
            counts = await terminal_counts(engine, started)
            done = sum(n for status, n in counts.items() if status not in ("starting", "active", "ending"))
            if done >= len(started) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - began
    rss.__exit__()
    cpu_ours = cpu.stop()
    ours = counts.get("complete", 0) / elapsed

    direct_after, _ = await direct_throughput(client, direct_queue, count, activities)
    whole = await whole_history(client, warm_up)
    direct = (direct_before + direct_after) / 2
    mirrored, _ = await direct_throughput(client, direct_queue, count, activities, local)
    chain_events = len((await client.get_workflow_handle(chain_id).fetch_history()).events)
    mib = 1024 * 1024
    note = (
        f"{count} concurrent recordings{' (QUICK)' if quick else ''}: POST /recordings -> 201, POST stop at once, "
        f"the scripted recording server uploads a 1 s 160x90 MP4 ({len(recorder.mp4):,} B) through /store, "
        f"finalize validates + stores it, until the catalog says `complete` (orchestration only, no encoding); "
        f"outcome {counts}, {len(failures)} failed requests{' (' + failures[0] + ')' if failures else ''}; "
        f"all 201+202 after {all_started:.1f} s, all done after {elapsed:.1f} s; worker RSS {rss.start / mib:.0f} "
        f"MiB before, peak {rss.peak / mib:.0f} MiB; direct = {count} concurrent bare workflows each running "
        f"{activities} no-op activities (what a recording ran up to `complete`: {by_type}), its worker in the "
        f"load generator, run before and after ours ({direct_before:.2f} and {direct_after:.2f}/s, mean taken); "
        f"the same bare workflow with the same mix as ours ({activities - local} activities, {local} local "
        f"activities): {mirrored:.2f}/s, ratio {ours / mirrored:.2f}; "
        f"history events: a recording {events} up to `complete` (its whole history: {whole}), a direct workflow "
        f"{chain_events}; CPU s "
        f"({os.cpu_count()} cores): ours {cpu_ours}; direct (first run) {cpu_direct}"
    )
    return BenchResult(
        "lifecycle_throughput", ours, direct, "recordings/s", "higher", target_of("lifecycle_throughput"), note
    )


# --------------------------------------------------------------------------------------------------------------


async def run(quick: bool, workdir: Path) -> list[BenchResult]:
    sizes = QUICK if quick else FULL
    workdir.mkdir(parents=True, exist_ok=True)
    procs = Processes(workdir)
    results: list[BenchResult] = []
    try:
        await procs.start_temporal()
        results.append(await deep_page(procs, "sqlite", sizes, quick))
        results.append(await deep_page(procs, "postgresql", sizes, quick))
        results += await recording_stack(procs, sizes, quick)
    finally:
        procs.close()
    return results


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="100,000 rows, page 500, 200 recordings")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-workflows-") as tmp:
        workdir = args.workdir or Path(tmp)
        began = time.perf_counter()
        results = asyncio.run(run(not args.full, workdir))
        for result in results:
            ratio = result.ratio
            direct = "-" if result.direct is None else f"{result.direct:.2f}"
            slowdown = "" if not result.direct else f"  ours/direct {result.ours / result.direct:.2f}"
            print(
                f"{result.name:28} ours {result.ours:9.2f}  direct {direct:>9}  {result.unit:13} "
                f"ratio {'-' if ratio is None else f'{ratio:.2f}'}{slowdown}  target {result.target} "
                f"met {result.met}\n    {result.note}"
            )
        print(f"took {time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main()
