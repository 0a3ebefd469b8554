"""Media through nginx with CALLREC_MEDIA_OFFLOAD=x-accel, beside nginx serving the same file by itself.

One local-store stack (bench/media.py's ApiStack: the API as its own process, with `CALLREC_MEDIA_OFFLOAD=x-accel`)
behind a real nginx running deploy/nginx/callrec.conf with deploy/nginx/media-local.conf (bench/proxy.py).
"ours" is `GET /api/v1/recordings/{id}/media` through that nginx: callrec authorizes and answers
X-Accel-Redirect, nginx sends the file. "direct" is the same nginx serving the same file from a plain location,
with no callrec at all. Both alternate round by round with one httpx.AsyncClient.
"""

from __future__ import annotations

import random
from pathlib import Path

import httpx

from bench.common import MB, BenchResult, Temporal, Timer, free_port, mb_per_s, median, percentile
from bench.media import API_KEY, FULL, QUICK, RANGE_BYTES, ApiStack, FakeRecorder, Sizes, get_all
from bench.proxy import NGINX, running_nginx, server_config


async def through_nginx(stack: ApiStack, base: str, sizes: Sizes) -> list[BenchResult]:
    size = sizes.media
    rid = "bench--EG_offload--1"
    key = await stack.seed(rid, size)
    media, direct_url = f"/api/v1/recordings/{rid}/media", f"/_bench_files/{key}"
    async with httpx.AsyncClient(base_url=base, headers={"X-API-KEY": API_KEY}, timeout=300) as http:

        async def once(url: str) -> float:
            with Timer() as t:
                status, n = await get_all(http, url)
            assert status == 200 and n == size, (url, status, n)
            return mb_per_s(n, t.elapsed)

        await once(media), await once(direct_url)  # warm up: connections, page cache
        mine: list[float] = []
        theirs: list[float] = []
        for _ in range(sizes.rounds):
            mine.append(await once(media))
            theirs.append(await once(direct_url))

        rng = random.Random(1234)
        offsets = [rng.randrange(0, size - RANGE_BYTES) for _ in range(sizes.ranges)]
        ours_ms: list[float] = []
        direct_ms: list[float] = []
        for offset in offsets:
            headers = {"Range": f"bytes={offset}-{offset + RANGE_BYTES - 1}"}
            for url, into in ((media, ours_ms), (direct_url, direct_ms)):
                with Timer() as t:
                    r = await http.get(url, headers=headers)
                assert r.status_code == 206 and len(r.content) == RANGE_BYTES, (url, r.status_code)
                into.append(t.elapsed * 1000)
    note = (
        f"{size // MB} MB, median of {sizes.rounds}; ours {min(mine):.0f}-{max(mine):.0f}, nginx alone "
        f"{min(theirs):.0f}-{max(theirs):.0f}"
    )
    return [
        BenchResult("media_x_accel_vs_nginx", median(mine), median(theirs), "MB/s", "higher", "ratio >= 0.9", note),
        BenchResult(
            "range_p50_x_accel_vs_nginx",
            percentile(ours_ms, 50),
            percentile(direct_ms, 50),
            "ms",
            "lower",
            "<= 1.5x",
            f"{sizes.ranges} random 64 KiB ranges; p90 ours {percentile(ours_ms, 90):.2f} ms, nginx alone "
            f"{percentile(direct_ms, 90):.2f} ms",
        ),
    ]


async def run(quick: bool, workdir: Path) -> list[BenchResult]:
    if not NGINX.exists():
        print(f"  offload: skipped, no nginx at {NGINX}", flush=True)
        return []
    sizes = QUICK if quick else FULL
    temporal = Temporal(workdir / "temporal")
    recorder = FakeRecorder()
    stack: ApiStack | None = None
    try:
        await temporal.ready()
        await recorder.start()
        stack = ApiStack("local", workdir / "local", temporal.address, recorder.port, None)
        stack.env["CALLREC_MEDIA_OFFLOAD"] = "x-accel"
        await stack.start()
        objects = stack.settings.objects_dir.resolve()
        port = free_port()
        files = f"    location /_bench_files/ {{\n        alias {objects}/;\n    }}\n"
        server = server_config(stack.base.removeprefix("http://"), port, objects_dir=objects, extra=files)
        async with running_nginx(workdir / "nginx", server, port) as base:
            print("  [local] media through nginx (x-accel) ...", flush=True)
            results = await through_nginx(stack, base, sizes)
        for r in results:
            r.store = "local"
            print(f"    {r.key}: ours {r.ours:.2f} {r.unit}, direct {r.direct:.2f}", flush=True)
        return results
    finally:
        if stack is not None:
            await stack.close()
        await recorder.close()
        temporal.stop()
