"""Media through nginx with CALLREC_MEDIA_OFFLOAD=x-accel, beside nginx serving the same file by itself.

One local-store stack (bench/media.py's ApiStack: the API as its own process, with `CALLREC_MEDIA_OFFLOAD=x-accel`)
behind a real nginx running deploy/nginx/callrec.conf with deploy/nginx/media-local.conf (bench/nginx.py).
"ours" is `GET /api/v1/recordings/{id}/media` through that nginx: callrec authorizes and answers
X-Accel-Redirect, nginx sends the file. "direct" is the same nginx serving the same file from a plain location,
with no callrec at all. Both are timed in the same rounds (bench/readers.py): whole files with the plain socket
client, ranges with the httpx client.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from bench.common import MB, BenchResult, Temporal, free_port, median, percentile
from bench.media import API_KEY, FULL, QUICK, ApiStack, FakeRecorder, Sizes
from bench.nginx import MISSING, Nginx, find_nginx, proxy_server
from bench.readers import Reader, range_times, read_socket, read_url, whole_rates


async def through_nginx(stack: ApiStack, base: str, sizes: Sizes) -> list[BenchResult]:
    size = sizes.media
    rid = "bench--EG_offload--1"
    key = await stack.seed(rid, size)
    media, plain = f"{base}/api/v1/recordings/{rid}/media", f"{base}/_bench_files/{key}"
    auth = {"X-API-KEY": API_KEY}
    async with httpx.AsyncClient(headers=auth, timeout=300) as http:
        whole: dict[str, Reader] = {
            "ours": lambda offset, length: read_socket(media, offset, length, auth),
            "direct": lambda offset, length: read_socket(plain, offset, length),
        }
        ranged: dict[str, Reader] = {
            "ours": lambda offset, length: read_url(http, media, offset, length),
            "direct": lambda offset, length: read_url(http, plain, offset, length),
        }
        rates = await whole_rates(whole, size, sizes.rounds)
        times = await range_times(ranged, size, sizes.ranges)
    mine, theirs = rates["ours"], rates["direct"]
    note = (
        f"{size // MB} MB, median of {sizes.rounds}; ours {min(mine):.0f}-{max(mine):.0f}, nginx alone "
        f"{min(theirs):.0f}-{max(theirs):.0f}"
    )
    return [
        BenchResult("media_x_accel_vs_nginx", median(mine), median(theirs), "MB/s", "higher", "ratio >= 0.9", note),
        BenchResult(
            "range_p50_x_accel_vs_nginx",
            percentile(times["ours"], 50),
            percentile(times["direct"], 50),
            "ms",
            "lower",
            "<= 1.5x",
            f"{sizes.ranges} random 64 KiB ranges; p90 ours {percentile(times['ours'], 90):.2f} ms, nginx alone "
            f"{percentile(times['direct'], 90):.2f} ms",
        ),
    ]


async def run(quick: bool, workdir: Path) -> list[BenchResult]:
    binary = find_nginx()
    if binary is None:
        print(f"  offload: {MISSING}", flush=True)
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
        server = proxy_server(stack.base.removeprefix("http://"), port, objects_dir=objects, extra=files)
        async with Nginx(binary, workdir / "nginx", port, server, probe="/health") as nginx:
            print("  [local] media through nginx (x-accel) ...", flush=True)
            results = await through_nginx(stack, nginx.url, sizes)
        for r in results:
            r.store = "local"
            print(f"    {r.key}: ours {r.ours:.2f} {r.unit}, direct {r.direct:.2f}", flush=True)
        return results
    finally:
        if stack is not None:
            await stack.close()
        await recorder.close()
        temporal.stop()
