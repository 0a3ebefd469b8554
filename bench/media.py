"""Media, ranges, ZIP and upload through the API, each beside the same bytes moved straight through the store.

For every object store (the S3 server on loopback, moto in its own process; and a local directory) this
starts a Temporal dev server (shared), then the API and the worker as their own processes
(`python -m callrec.cli api|worker`), and a stand-in recording server in this process that accepts
start/stop. Recordings are seeded by writing objects to the store and rows to the catalog directly.

"ours" is the request through the API with one httpx.AsyncClient. "direct" reads the same bytes with the
same client straight from the store's own HTTP server: S3 through a presigned URL, the local directory through
a bare standard-library file server on it (bench/fileserver.py, its own process); the media note also gives
the store's own reader in this process, with no HTTP at all. Uploads go straight with the store's `put_stream`
in this process (minio's put_object on S3), as the issue's "put_object of the same bytes straight"; ours are
sent with a plain socket (`post_socket`), not httpx, so the client costs the shared cores little more than the
direct side's own source of bytes.

On the local store nginx serves the very same file (bench/nginx.py) for the anchor rows `media_vs_nginx` and
`range_p50_vs_nginx`, measured in the same rounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    MB,
    BenchResult,
    CpuMeter,
    MiB,
    Moto,
    PeakRss,
    Temporal,
    Timer,
    free_port,
    mb_per_s,
    median,
    percentile,
    profiled,
    spawn,
    stop_process,
    wait_http,
)
from bench.nginx import MISSING as NGINX_MISSING
from bench.nginx import Nginx, find_nginx
from bench.readers import Reader, range_times, read_socket, read_url, whole_rates
from bench.targets import target_of
from callrec.storage.objects import LocalObjectStore, S3ObjectStore

API_KEY = "bench-api-key-0123456789abcdef01234567"  # `callrec api` wants at least 32 characters
TOKEN_SECRET = "bench-token-secret-0123456789abcdef0123"
SECRET = "bench-recording-secret"
OCS = "/ocs/v2.php/apps/spreed/api/v1"
CHUNK = MiB  # what the load generator sends and what the direct path reads: the store's default chunk
RSS_LIMIT_MB = 64.0
RSS_NOISE_MB = 8.0  # below this, "doubled" is allocator noise, not growth with the data
MP4_HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"  # what the upload's sniffer wants to see


@dataclass(frozen=True)
class Sizes:
    media: int
    rounds: int
    ranges: int
    zip_count: int
    zip_each: int
    upload: int


FULL = Sizes(media=200 * MB, rounds=5, ranges=1000, zip_count=10, zip_each=50 * MB, upload=500 * MB)
# QUICK keeps the full run's 50 MB ZIP entries: with smaller ones the store's per-object round trips dominate
QUICK = Sizes(media=100 * MB, rounds=5, ranges=200, zip_count=4, zip_each=50 * MB, upload=100 * MB)

_POOL = os.urandom(16 * MiB)  # incompressible bytes to slice from; nothing on the path dedupes or compresses


def payload(size: int, chunk: int = CHUNK, head: bytes = b"") -> AsyncIterator[bytes]:
    """``size`` bytes in ``chunk``-sized pieces, starting with ``head``."""

    async def gen() -> AsyncIterator[bytes]:
        sent = 0
        offset = 0
        while sent < size:
            n = min(chunk, size - sent)
            if offset + n > len(_POOL):
                offset = 0
            piece = _POOL[offset : offset + n]
            if sent == 0 and head:
                piece = head + piece[len(head) :]
            offset += n
            sent += n
            yield piece

    return gen()


# ----------------------------------------------------------------------------- the stand-in recorder


class FakeRecorder:
    """Accepts a recording server's start/stop and records them; the benchmark plays its callbacks."""

    def __init__(self) -> None:
        from quart import Quart, request

        self.port = free_port()
        self.requests: list[dict[str, Any]] = []
        self.stop = asyncio.Event()
        app = Quart("bench-recorder")

        @app.post("/api/v1/room/<token>")
        async def room(token: str) -> tuple[str, int]:
            self.requests.append({"token": token} | json.loads(await request.get_data()))
            return "{}", 200

        @app.get("/health")
        async def health() -> str:
            return "ok"

        self.app = app
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        from callrec.servers import serve_app

        async def stopped() -> None:
            await self.stop.wait()

        self.task = asyncio.create_task(serve_app(self.app, "127.0.0.1", self.port, stopped))
        await wait_http(f"http://127.0.0.1:{self.port}/health")

    async def wait_for(self, kind: str, token: str, timeout: float = 30) -> dict[str, Any]:
        for _ in range(int(timeout / 0.05)):
            found = [r for r in self.requests if r.get("type") == kind and r["token"] == token]
            if found:
                return found[-1]
            await asyncio.sleep(0.05)
        raise RuntimeError(f"no {kind} request for {token} reached the stand-in recording server")

    async def close(self) -> None:
        self.stop.set()
        if self.task is not None:
            await self.task


# ----------------------------------------------------------------------------- one stack per store


class ApiStack:
    """The API and the worker as separate processes on one store, plus this process's view of the same
    catalog and store (for seeding and for the direct path)."""

    def __init__(
        self, kind: str, workdir: Path, temporal: str, recorder_port: int, s3: str | None, s3_pid: int | None = None
    ) -> None:
        from callrec.domain.settings import Settings

        self.kind = kind
        self.workdir = workdir
        port = free_port()
        values: dict[str, str] = {
            "CALLREC_DATA_DIR": str(workdir),
            "CALLREC_API_KEY": API_KEY,
            "CALLREC_TOKEN_SECRET": TOKEN_SECRET,
            "CALLREC_RECORDING_SECRET": SECRET,
            "CALLREC_TEMPORAL_ADDRESS": temporal,
            "CALLREC_TASK_QUEUE": f"bench-{uuid.uuid4().hex[:8]}",
            "CALLREC_API_PORT": str(port),
            "CALLREC_API_URL": f"http://127.0.0.1:{port}",
            "CALLREC_EGRESS": "talk",  # the stand-in recording server is an external one, not a built-in recorder
            "CALLREC_TALK_RECORDING_SERVER": f"http://127.0.0.1:{recorder_port}",
            "CALLREC_WORKER_METRICS_PORT": "0",  # fixed ports collide with any other worker on the machine
            "CALLREC_TEMPORAL_METRICS_PORT": "0",
            "CALLREC_UPLOAD_TIMEOUT_S": "3600",
            "CALLREC_MAX_UPLOAD_BYTES": str(64 * 1024**3),
        }
        if s3 is not None:
            values |= {
                "CALLREC_S3_ENDPOINT": s3,
                "CALLREC_S3_ACCESS_KEY": "testing",
                "CALLREC_S3_SECRET_KEY": "testing",
                "CALLREC_S3_BUCKET": f"bench-{uuid.uuid4().hex[:12]}",
            }
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith("CALLREC_") or k == "CALLREC_HTTP_SERVER"
        } | values
        self.env.setdefault("AWS_ACCESS_KEY_ID", "testing")
        self.env.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
        self.settings = Settings(**{k.removeprefix("CALLREC_").lower(): v for k, v in values.items()})  # type: ignore[arg-type]
        self.base = f"http://127.0.0.1:{port}"
        self.processes: list[Any] = []
        self.files_url = ""
        self.s3_pid = s3_pid

    def pids(self) -> dict[str, int]:
        """The processes a figure's CPU time is spread over."""
        found = {"api": self.api.pid, "load generator": os.getpid()}
        return found | ({"S3 server": self.s3_pid} if self.s3_pid is not None else {})

    async def start(self) -> None:
        from callrec.storage.catalog import Catalog, create_schema
        from callrec.storage.stores import make_store

        self.workdir.mkdir(parents=True, exist_ok=True)
        self.catalog = Catalog.from_url(self.settings.catalog_url)
        await create_schema(self.catalog.engine)
        self.store = await make_store(self.settings)
        me = [sys.executable, "-m", "callrec.cli"]
        self.api = spawn([*me, "api"], self.workdir / "logs" / "api.log", self.env)
        self.worker = spawn([*me, "worker"], self.workdir / "logs" / "worker.log", self.env)
        self.processes = [self.api, self.worker]
        if isinstance(self.store, LocalObjectStore):
            port = free_port()
            argv = [sys.executable, "-m", "bench.fileserver", str(self.store.root), str(port)]
            self.files = spawn(argv, self.workdir / "logs" / "fileserver.log", self.env)
            self.processes.append(self.files)
            self.files_url = f"http://127.0.0.1:{port}"
            await wait_http(f"{self.files_url}/", self.files)
        await wait_http(f"{self.base}/health", self.api)
        self.http = httpx.AsyncClient(base_url=self.base, headers={"X-API-KEY": API_KEY}, timeout=300)
        # The media benches need no recorder, and the worker shows in /health once it has polled: wait for the rest.
        needed = ("catalog", "objectStore", "temporal")
        for _ in range(100):
            health = (await self.http.get("/health")).json()
            if all(health.get(part, {}).get("status") == "up" for part in needed):
                break
            await asyncio.sleep(0.2)
        else:
            raise RuntimeError(f"the API is not healthy: {health}")

    async def close(self) -> None:
        if hasattr(self, "http"):
            await self.http.aclose()
        for process in self.processes:
            stop_process(process)
        if hasattr(self, "catalog"):
            await self.catalog.close()

    async def seed(self, recording_id: str, size: int) -> str:
        """A finished recording of ``size`` bytes, object and row written directly; returns its key."""
        from callrec.storage.rows import RecordingRow

        key = f"recordings/bench/{recording_id}.mp4"
        await self.store.put_stream(key, payload(size))
        row = RecordingRow(
            recording_id=recording_id,
            room_id="bench",
            room_name="Bench",
            status="complete",
            layout="grid",
            encoding="720p",
            filename=f"{recording_id}.mp4",
            creation_date=0,
            object_key=key,
            size=size,
        )
        await self.catalog.add_recording(row)
        return key


# ----------------------------------------------------------------------------- measurements


async def get_all(http: httpx.AsyncClient, url: str, **kwargs: Any) -> tuple[int, int]:
    """(status, body bytes) of a streamed GET."""
    received = 0
    async with http.stream("GET", url, **kwargs) as r:
        async for piece in r.aiter_raw():
            received += len(piece)
        return r.status_code, received


def direct_url(stack: ApiStack, key: str) -> str:
    """Where the store's own HTTP server serves ``key``."""
    if isinstance(stack.store, S3ObjectStore):
        return stack.store.presigned_url(key)
    return f"{stack.files_url}/{key}"


async def read_all(stack: ApiStack, key: str, offset: int = 0, length: int | None = None) -> int:
    """The direct path: the same httpx client GETs the object from the store's own HTTP server."""
    return await read_url(stack.http, direct_url(stack, key), offset, length)


async def read_in_process(stack: ApiStack, key: str) -> float:
    """MB/s of the store's own reader in this process: no HTTP at all (reported in notes)."""
    with Timer() as t:
        received = 0
        async for chunk in stack.store.read(key):
            received += len(chunk)
    return mb_per_s(received, t.elapsed)


async def media_throughput(stack: ApiStack, sizes: Sizes) -> list[BenchResult]:
    """Whole-object MB/s and 64 KiB range latency through /media against the store's own HTTP server; on the
    local store also against nginx serving the very same file (the anchor rows), in the same rounds."""
    size = sizes.media
    rid = "bench--EG_media--1"
    key = await stack.seed(rid, size)
    url = f"/api/v1/recordings/{rid}/media"
    readers: dict[str, Reader] = {
        "ours": lambda offset, length: read_url(stack.http, url, offset, length),
        "direct": lambda offset, length: read_all(stack, key, offset, length),
    }
    whole = dict(readers)
    async with contextlib.AsyncExitStack() as cleanup:
        if isinstance(stack.store, LocalObjectStore):
            binary = find_nginx()
            if binary is None:
                print(f"    {NGINX_MISSING}", flush=True)
            else:
                nginx = await cleanup.enter_async_context(
                    Nginx.files(binary, stack.store.root, stack.workdir / "nginx")
                )
                file_url = f"{nginx.url}/{key}"
                readers["nginx"] = lambda offset, length: read_url(stack.http, file_url, offset, length)
                # whole files from nginx outrun httpx: both sides of the anchor read with the plain socket client
                auth = {"X-API-KEY": API_KEY}
                whole["ours-socket"] = lambda offset, length: read_socket(f"{stack.base}{url}", offset, length, auth)
                whole["nginx"] = lambda offset, length: read_socket(file_url, offset, length)
                # the floor of any app on granian (bench/asgi_floor.py), for the anchor rows' notes
                floor_url = await cleanup.enter_async_context(asgi_floor(stack))
                floor_url += f"/{key}"
                readers["floor"] = lambda offset, length: read_url(stack.http, floor_url, offset, length)
                whole["floor"] = lambda offset, length: read_socket(floor_url, offset, length)
        rates = await whole_rates(whole, size, sizes.rounds)
        local = await read_in_process(stack, key)
        # Random 64 KiB ranges of the same object, interleaved so all see the same conditions.
        times = await range_times(readers, size, sizes.ranges)
    await stack.store.delete(key)

    mine, theirs = rates["ours"], rates["direct"]
    note = (
        f"{size // MB} MB, median of {sizes.rounds}; ours {min(mine):.0f}-{max(mine):.0f}, direct "
        f"{min(theirs):.0f}-{max(theirs):.0f}; the store's reader in this process: {local:.0f}"
    )
    results = [
        BenchResult("media_throughput", median(mine), median(theirs), "MB/s", "higher", "ratio >= 0.9", note),
        BenchResult(
            "range_latency_p50",
            percentile(times["ours"], 50),
            percentile(times["direct"], 50),
            "ms",
            "lower",
            "<= 1.5x",
            f"{sizes.ranges} ranges; p90 ours {percentile(times['ours'], 90):.2f} ms, "
            f"direct {percentile(times['direct'], 90):.2f} ms",
        ),
    ]
    if "nginx" in readers:
        results += nginx_rows(rates, times, sizes)
    return results


@contextlib.asynccontextmanager
async def asgi_floor(stack: ApiStack) -> AsyncIterator[str]:
    """bench/asgi_floor.py on the local store's directory, in its own process; yields its URL."""
    assert isinstance(stack.store, LocalObjectStore)
    port = free_port()
    argv = [sys.executable, "-m", "bench.asgi_floor", str(stack.store.root), str(port)]
    process = spawn(argv, stack.workdir / "logs" / "asgi_floor.log", stack.env)
    try:
        await wait_http(f"http://127.0.0.1:{port}/", process)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)


def nginx_rows(rates: dict[str, list[float]], times: dict[str, list[float]], sizes: Sizes) -> list[BenchResult]:
    """The anchor rows: callrec's /media (ours) against nginx (direct) from the rounds measured above."""
    mine, theirs, floor = rates["ours-socket"], rates["nginx"], rates["floor"]
    floor_ms, nginx_ms = percentile(times["floor"], 50), percentile(times["nginx"], 50)
    return [
        BenchResult(
            "media_vs_nginx",
            median(mine),
            median(theirs),
            "MB/s",
            "higher",
            target_of("media_vs_nginx@local"),
            f"{sizes.media // MB} MB, median of {sizes.rounds}, alternating, read with a plain socket; "
            f"ours {min(mine):.0f}-{max(mine):.0f}, nginx (sendfile) {min(theirs):.0f}-{max(theirs):.0f}; the floor "
            f"of an app on granian (bench/asgi_floor.py, pathsend) {median(floor):.0f} = "
            f"{median(floor) / median(theirs):.2f}x nginx, ours {median(mine) / median(floor):.2f}x of it",
        ),
        BenchResult(
            "range_p50_vs_nginx",
            percentile(times["ours"], 50),
            percentile(times["nginx"], 50),
            "ms",
            "lower",
            target_of("range_p50_vs_nginx@local"),
            f"{sizes.ranges} 64 KiB ranges, interleaved; p90 ours {percentile(times['ours'], 90):.2f} ms, "
            f"nginx {percentile(times['nginx'], 90):.2f} ms; the floor of an app on granian (bench/asgi_floor.py, "
            f"one pread) p50 {floor_ms:.2f} ms = {floor_ms / nginx_ms:.2f}x nginx",
        ),
    ]


async def zip_throughput(stack: ApiStack, sizes: Sizes) -> list[BenchResult]:
    ids = [f"bench--EG_zip{i:02d}--{i}" for i in range(2 * sizes.zip_count)]
    keys = [await stack.seed(rid, sizes.zip_each) for rid in ids]
    once, twice = ids[: sizes.zip_count], ids
    payload_bytes = sizes.zip_count * sizes.zip_each

    async def ours(which: list[str]) -> tuple[float, float]:
        with PeakRss(stack.api.pid) as rss, Timer() as t:
            status, n = await get_all(
                stack.http, "/api/v1/recordings/download", params={"recordingIds": ",".join(which)}
            )
        assert status == 200 and n > len(which) * sizes.zip_each, (status, n)
        return mb_per_s(n, t.elapsed), rss.growth_mb

    async def direct() -> float:
        with Timer() as t:
            n = 0
            for key in keys[: sizes.zip_count]:
                n += await read_all(stack, key)
        assert n == payload_bytes
        return mb_per_s(n, t.elapsed)

    mine, theirs, growth = [], [], []
    for _ in range(sizes.rounds):
        rate, grew = await ours(once)
        mine.append(rate)
        growth.append(grew)
        theirs.append(await direct())
    _, grew_2x = await ours(twice)
    grew_1x = max(growth)
    total = f"{sizes.zip_count} x {sizes.zip_each // MB} MB"
    results = [
        BenchResult(
            "zip_throughput",
            median(mine),
            median(theirs),
            "MB/s",
            "higher",
            "ratio >= 0.85",
            f"{total}, median of {sizes.rounds}",
        ),  # fmt: skip
        BenchResult(
            "zip_peak_rss_mb",
            grew_1x,
            None,
            "MB",
            "lower",
            f"<= {RSS_LIMIT_MB:g} MB",
            f"API process RSS growth serving {total}; max of {sizes.rounds}",
        ),  # fmt: skip
        BenchResult(
            "zip_peak_rss_mb_2x",
            grew_2x,
            None,
            "MB",
            "lower",
            f"<= {RSS_LIMIT_MB:g} MB and < 2x zip_peak_rss_mb",
            f"{2 * sizes.zip_count} x {sizes.zip_each // MB} MB; 1x grew {grew_1x:.1f} MB",
            met=grew_2x <= RSS_LIMIT_MB and (grew_2x < 2 * grew_1x or grew_2x <= grew_1x + RSS_NOISE_MB),
        ),
    ]
    for key in keys:
        await stack.store.delete(key)
    return results


async def recording_to_upload(stack: ApiStack, recorder: FakeRecorder) -> tuple[str, str]:
    """A recording in `ending`, as a recorder has it right before it uploads: (room id, recording id)."""
    from callrec.domain import signing

    http = stack.http
    created = await http.post("/api/v1/rooms", json={"roomName": f"Bench {uuid.uuid4().hex[:6]}"})
    assert created.status_code == 201, created.text
    room = created.json()["roomId"]
    joined = await http.put(f"/api/v1/rooms/{room}/call", json={"participants": [{"id": "alice", "name": "Alice"}]})
    assert joined.status_code == 200, joined.text
    pending = asyncio.create_task(http.post("/api/v1/recordings", json={"roomId": room}))
    await recorder.wait_for("start", room)
    body = json.dumps({"type": "started", "started": {"token": room, "status": 1}}).encode()
    headers = signing.signed_headers(SECRET, body) | {"Content-Type": "application/json"}
    callback = await http.post(f"{OCS}/recording/backend", content=body, headers=headers)
    assert callback.status_code == 200, callback.text
    started = await pending
    assert started.status_code == 201, started.text
    recording_id = str(started.json()["recordingId"])
    stopped = await http.post(f"/api/v1/recordings/{recording_id}/stop")
    assert stopped.status_code == 202, stopped.text
    await recorder.wait_for("stop", room)
    return room, recording_id


async def upload_throughput(stack: ApiStack, sizes: Sizes, recorder: FakeRecorder) -> list[BenchResult]:
    size = sizes.upload

    async def direct() -> float:
        """put_object of the same bytes straight: the store's own put_stream in this process (minio on S3)."""
        key = f"bench/direct-{uuid.uuid4().hex}.mp4"
        with Timer() as t:
            assert (await stack.store.put_stream(key, payload(size, head=MP4_HEAD))).size == size
        await stack.store.delete(key)
        return mb_per_s(size, t.elapsed)

    mine, theirs, growth = [], [], []
    cpu_ours, cpu_direct = CpuMeter(stack.pids()), CpuMeter(stack.pids())
    for _ in range(sizes.rounds):  # interleaved, so both see the same conditions
        with cpu_direct:
            theirs.append(await direct())
        with cpu_ours:
            rate, grew = await upload_once(stack, recorder, size)
        mine.append(rate)
        growth.append(grew)
    note = (
        f"{size // MB} MB multipart POST to /store vs put_stream in this process, median of {sizes.rounds}, "
        f"interleaved; ours {min(mine):.0f}-{max(mine):.0f}, direct {min(theirs):.0f}-{max(theirs):.0f}; "
        f"CPU s per round ({os.cpu_count()} cores): ours {cpu_ours.per_round(sizes.rounds)}; "
        f"direct {cpu_direct.per_round(sizes.rounds)}"
    )
    return [
        BenchResult("upload_throughput", median(mine), median(theirs), "MB/s", "higher", "ratio >= 0.8", note),
        BenchResult(
            "upload_peak_rss_mb",
            max(growth),
            None,
            "MB",
            "lower",
            f"<= {RSS_LIMIT_MB:g} MB",
            f"API process RSS growth during a {size // MB} MB upload; max of {sizes.rounds}",
        ),  # fmt: skip
    ]


async def upload_once(stack: ApiStack, recorder: FakeRecorder, size: int) -> tuple[float, float]:
    """One recorder upload of ``size`` bytes through /store: (MB/s, the API's RSS growth in MB)."""
    from callrec.domain import signing

    room, recording_id = await recording_to_upload(stack, recorder)
    boundary = f"bench{uuid.uuid4().hex}"
    pre = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="owner"\r\n\r\napi-key\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="recordingId"\r\n\r\n{recording_id}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="call.mp4"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()
    post = f"\r\n--{boundary}--\r\n".encode()

    async def body() -> AsyncIterator[bytes]:
        yield pre
        async for chunk in payload(size, head=MP4_HEAD):
            yield chunk
        yield post

    headers = signing.signed_headers(SECRET, room.encode()) | {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(len(pre) + size + len(post)),
    }
    with PeakRss(stack.api.pid) as rss, Timer() as t:
        status, answer = await post_socket(stack.base, f"{OCS}/recording/{room}/store", headers, body())
    assert status == 200, answer
    return mb_per_s(size, t.elapsed), rss.growth_mb


async def post_socket(base: str, path: str, headers: dict[str, str], body: AsyncIterator[bytes]) -> tuple[int, bytes]:
    """One HTTP/1.1 POST of ``body`` (``headers`` give its Content-Length) on a new plain socket, each piece
    written as it comes with no framing or copy: (status, answer body). The load generator shares the cores with
    the API, and the direct write it is compared with has no HTTP client at all; httpx took about a third as
    much CPU per byte as the API itself."""
    loop = asyncio.get_running_loop()
    host, _, port = base.removeprefix("http://").rpartition(":")
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    with socket.create_connection((host, int(port))) as sock:
        sock.setblocking(False)
        await loop.sock_sendall(sock, ("\r\n".join(lines) + "\r\n\r\n").encode())
        async for piece in body:
            await loop.sock_sendall(sock, piece)
        answer = b""
        while piece := await loop.sock_recv(sock, 64 * 1024):  # `Connection: close`: the answer ends with it
            answer += piece
    head, _, content = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), content


# ----------------------------------------------------------------------------- the group


async def run(quick: bool, workdir: Path, stores: tuple[str, ...] = ("s3", "local")) -> list[BenchResult]:
    sizes = QUICK if quick else FULL
    results: list[BenchResult] = []
    temporal = Temporal(workdir / "temporal")
    moto = Moto(workdir) if "s3" in stores else None
    recorder = FakeRecorder()
    try:
        await temporal.ready()
        if moto is not None:
            await moto.ready()
        await recorder.start()
        for kind in stores:
            s3 = moto.endpoint if moto is not None and kind == "s3" else None
            s3_pid = moto.process.pid if moto is not None and kind == "s3" else None
            stack = ApiStack(kind, workdir / kind, temporal.address, recorder.port, s3, s3_pid)
            try:
                await stack.start()
                for step in (media_throughput, zip_throughput):
                    print(f"  [{kind}] {step.__name__} ...", flush=True)
                    with profiled(stack.api.pid, f"api-{kind}-{step.__name__}"):
                        found = await step(stack, sizes)
                    _tag(found, kind)
                    results += found
                print(f"  [{kind}] upload_throughput ...", flush=True)
                with profiled(stack.api.pid, f"api-{kind}-upload_throughput"):
                    found = await upload_throughput(stack, sizes, recorder)
                _tag(found, kind)
                results += found
            finally:
                await stack.close()
    finally:
        await recorder.close()
        if moto is not None:
            moto.stop()
        temporal.stop()
    return results


def _tag(results: list[BenchResult], store: str) -> None:
    for r in results:
        r.store = store
        print(f"    {r.key}: ours {r.ours:.2f} {r.unit}" + (f", direct {r.direct:.2f}" if r.direct is not None else ""),
              flush=True)  # fmt: skip
