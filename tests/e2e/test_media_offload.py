"""CALLREC_MEDIA_OFFLOAD: callrec authorizes, a real nginx (deploy/nginx/callrec.conf) or S3 sends the bytes."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from bench.common import free_port
from bench.nginx import Nginx, find_nginx, proxy_server
from tests.conftest import API_KEY, Stack, StackFactory, s3_overrides
from tests.helpers import add_finished_recording, one_chunk

NGINX = find_nginx()
pytestmark = pytest.mark.skipif(NGINX is None, reason="needs nginx (apt-get install nginx)")

MiB = 1 << 20
RECORDING_ID = "big--EG_a--1"
KEY = f"recordings/big/{RECORDING_ID}.mp4"
ORIGIN = "https://app.example.com"
ODD_ID = "big--EG_b--2"
ODD_KEY = "recordings/big/a b+ä%41?x=1#y;z.mp4"


async def seed(stack: Stack, size: int = 3 * MiB + 5, recording_id: str = RECORDING_ID, key: str = KEY) -> bytes:
    """A finished recording of `size` random bytes, put straight into the store and catalog (as test_files.py)."""
    data = os.urandom(size)
    await add_finished_recording(stack, recording_id, key, one_chunk(data), size)
    return data


async def check_served_through_nginx(stack: Stack, base: str, data: bytes) -> None:
    media = f"/api/v1/recordings/{RECORDING_ID}/media"
    async with httpx.AsyncClient(base_url=base, headers={"X-API-KEY": API_KEY}, timeout=60) as http:
        whole = await http.get(media)
        assert whole.status_code == 200, whole.text
        assert whole.content == data
        assert whole.headers["Content-Length"] == str(len(data))
        assert whole.headers["Content-Type"] == "video/mp4"
        assert whole.headers["Cache-Control"] == "private, max-age=3600"
        assert "X-Accel-Redirect" not in whole.headers
        # callrec's headers on every answer hold for the bytes nginx sends: no sniffing, no Referer, CORS.
        assert whole.headers["X-Content-Type-Options"] == "nosniff"
        assert whole.headers["Referrer-Policy"] == "no-referrer"
        cross = await http.get(media, headers={"Origin": ORIGIN, "Range": "bytes=0-3"})
        assert cross.status_code == 206 and cross.content == data[:4]
        assert cross.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert "Content-Range" in cross.headers["Access-Control-Expose-Headers"]
        assert cross.headers["Vary"] == "Origin"
        other = await http.get(media, headers={"Origin": "https://elsewhere.example.com"})
        assert other.status_code == 200 and "Access-Control-Allow-Origin" not in other.headers

        part = await http.get(media, headers={"Range": "bytes=1048570-1048585"})
        assert part.status_code == 206, part.text
        assert part.content == data[1048570:1048586]
        assert part.headers["Content-Range"] == f"bytes 1048570-1048585/{len(data)}"

        # The range rules stay callrec's: 416 past the end, 422 for a form Meet does not take.
        beyond = await http.get(media, headers={"Range": f"bytes={len(data)}-"})
        assert beyond.status_code == 416
        assert beyond.headers["Content-Range"] == f"bytes */{len(data)}"
        assert (await http.get(media, headers={"Range": "bytes=-5"})).status_code == 422

        download = await http.get(f"/api/v1/recordings/{RECORDING_ID}/download")
        assert download.status_code == 200 and download.content == data
        assert download.headers["Content-Disposition"] == f'attachment; filename="{RECORDING_ID}.mp4"'

        # Without access callrec refuses, and nginx sends nothing of the file.
        anonymous = await http.get(media, headers={"X-API-KEY": ""})
        assert anonymous.status_code == 401
        assert anonymous.json()["error"]
        wrong = await http.get(media, params={"recordingSecret": "x" * 32})
        assert wrong.status_code == 400
        assert data[:64] not in anonymous.content + wrong.content

        # A key with characters that mean something in a URL reaches nginx percent-encoded and decoded once.
        odd = await seed(stack, 1000, ODD_ID, ODD_KEY)
        got = await http.get(f"/api/v1/recordings/{ODD_ID}/media", headers={"Range": "bytes=10-19"})
        assert got.status_code == 206 and got.content == odd[10:20]

        # The internal location is not there from outside, with or without credentials.
        for path in (f"/_callrec_media/{KEY}", f"/_callrec_media/{stack.settings.s3_bucket}/{KEY}"):
            direct = await http.get(path)
            assert direct.status_code == 404
            assert data[:64] not in direct.content


async def test_x_accel_on_the_local_store(stacks: StackFactory, tmp_path: Path) -> None:
    stack = await stacks.start(recorder=False, media_offload="x-accel", cors_origins=[ORIGIN])
    data = await seed(stack)

    # Straight from callrec: no bytes, the redirect nginx follows.
    answer = await stack.api.get(f"/api/v1/recordings/{RECORDING_ID}/media")
    assert answer.status_code == 200 and answer.content == b""
    assert answer.headers["X-Accel-Redirect"] == f"/_callrec_media/{KEY}"

    port = free_port()
    api = f"127.0.0.1:{stack.settings.api_port}"
    server = proxy_server(api, port, objects_dir=stack.settings.objects_dir)
    async with Nginx(NGINX or "", tmp_path / "nginx", port, server, probe="/health") as nginx:
        await check_served_through_nginx(stack, nginx.url, data)


class RequestLines:
    """A TCP forwarder to `target` that keeps the request line of each connection, as it came over the wire."""

    def __init__(self, target: str) -> None:
        self.target = target.rsplit(":", 1)
        self.lines: list[bytes] = []

    async def start(self) -> str:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"127.0.0.1:{server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await reader.readline()
        self.lines.append(line)
        up_reader, up_writer = await asyncio.open_connection(self.target[0], int(self.target[1]))
        up_writer.write(line)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            while data := await source.read(1 << 16):
                sink.write(data)
                await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)


async def test_x_accel_on_s3_proxies_a_presigned_path(stacks: StackFactory, tmp_path: Path, s3_endpoint: str) -> None:
    stack = await stacks.start(
        recorder=False, media_offload="x-accel", cors_origins=[ORIGIN], **s3_overrides(s3_endpoint)
    )
    data = await seed(stack)

    answer = await stack.api.get(f"/api/v1/recordings/{RECORDING_ID}/media")
    target = urlsplit(answer.headers["X-Accel-Redirect"])
    assert target.path == f"/_callrec_media/{stack.settings.s3_bucket}/{KEY}"
    assert parse_qs(target.query)["X-Amz-Expires"] == ["300"]

    port = free_port()
    api = f"127.0.0.1:{stack.settings.api_port}"
    # nginx talks to S3 through a forwarder that keeps what it sent: moto checks no signature, S3 and MinIO do.
    wire = RequestLines(s3_endpoint)
    via = await wire.start()
    server = proxy_server(api, port, s3_endpoint=via).replace(f"Host {via};", f"Host {s3_endpoint};")  # as signed
    async with Nginx(NGINX or "", tmp_path / "nginx", port, server, probe="/health") as nginx:
        await check_served_through_nginx(stack, nginx.url, data)

    # What S3 received is the path and query callrec signed, byte for byte, the odd key's too.
    assert wire.lines
    for key in (KEY, ODD_KEY):
        path = urlsplit(await asyncio.to_thread(stack.store.presigned_url, key)).path  # type: ignore[attr-defined]
        sent = [line for line in wire.lines if line.startswith(f"GET {path}?".encode())]
        assert sent, (path, wire.lines)
        assert all(b"X-Amz-Signature=" in line and b"X-Amz-Expires=300" in line for line in sent)


async def test_presigned_redirects_to_a_short_lived_s3_url(stacks: StackFactory, s3_endpoint: str) -> None:
    stack = await stacks.start(
        recorder=False, media_offload="presigned", media_offload_expiry_s=120, **s3_overrides(s3_endpoint)
    )
    data = await seed(stack)
    media = f"/api/v1/recordings/{RECORDING_ID}/media"

    redirect = await stack.api.get(media)
    assert redirect.status_code == 302, redirect.text
    assert redirect.headers["Cache-Control"] == "no-store"
    location = redirect.headers["Location"]
    query = parse_qs(urlsplit(location).query)
    assert query["X-Amz-Expires"] == ["120"]  # the URL is good for two minutes from its signing
    signed = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - signed).total_seconds()) < 60

    # A client that follows redirects gets the bytes from S3, with no credentials of its own; its Range goes there.
    async with httpx.AsyncClient(timeout=60) as plain:
        whole = await plain.get(location)
        assert whole.status_code == 200 and whole.content == data
        assert whole.headers["Content-Type"] == "video/mp4"
        assert whole.headers["Cache-Control"] == "private, max-age=3600"
        part = await plain.get(location, headers={"Range": "bytes=10-19"})
        assert part.status_code == 206 and part.content == data[10:20]

    async with httpx.AsyncClient(base_url=str(stack.api.base_url), timeout=60, follow_redirects=True) as anonymous:
        refused = await anonymous.get(media)
        assert refused.status_code == 401 and "Location" not in refused.headers
    beyond = await stack.api.get(media, headers={"Range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416 and "Location" not in beyond.headers

    download = await stack.api.get(f"/api/v1/recordings/{RECORDING_ID}/download")
    assert download.status_code == 302
    async with httpx.AsyncClient(timeout=60) as plain:
        attached = await plain.get(download.headers["Location"])
    assert attached.content == data
    assert attached.headers["Content-Disposition"] == f'attachment; filename="{RECORDING_ID}.mp4"'
