"""The nginx that `make bench` holds callrec's media against: its generated config starts without root's paths
and serves the local store's very file, whole and by byte range."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bench.media import payload
from bench.nginx import Nginx, file_server, find_nginx
from bench.readers import RANGE_BYTES, Reader, range_times, read_socket, read_url, whole_rates
from callrec.storage.objects import LocalObjectStore

NGINX = find_nginx()
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx)")
SIZE = 3 * 1024 * 1024 + 17
KEY = "recordings/room/rec.mp4"


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Nginx, bytes]]:
    store = LocalObjectStore(tmp_path / "store")
    await store.put_stream(KEY, payload(SIZE))
    data = b"".join([chunk async for chunk in store.read(KEY)])
    assert NGINX is not None
    async with Nginx.files(NGINX, store.root, tmp_path / "nginx") as nginx:
        yield nginx, data


async def test_serves_the_stores_file_whole_and_by_range(served: tuple[Nginx, bytes]) -> None:
    nginx, data = served
    url = f"{nginx.url}/{KEY}"
    async with httpx.AsyncClient() as http:
        whole = await http.get(url)
        assert whole.status_code == 200
        assert whole.content == data
        assert whole.headers["accept-ranges"] == "bytes"

        part = await http.get(url, headers={"Range": "bytes=1000-66535"})
        assert part.status_code == 206
        assert part.headers["content-range"] == f"bytes 1000-66535/{SIZE}"
        assert part.content == data[1000:66536]

        tail = await http.get(url, headers={"Range": "bytes=-10"})
        assert tail.status_code == 206 and tail.content == data[-10:]

        beyond = await http.get(url, headers={"Range": f"bytes={SIZE}-"})
        assert beyond.status_code == 416

        assert (await http.get(f"{nginx.url}/recordings/room/other.mp4")).status_code == 404
        assert (await http.post(url, content=b"x")).status_code == 403  # read-only


async def test_everything_it_writes_stays_in_its_workdir(served: tuple[Nginx, bytes], tmp_path: Path) -> None:
    nginx, _ = served
    workdir = tmp_path / "nginx"
    assert nginx.process is not None
    assert (workdir / "nginx.pid").read_text().strip() == str(nginx.process.pid)
    assert {p.name for p in (workdir / "temp").iterdir()} >= {"client_body", "proxy"}
    conf = (workdir / "nginx.conf").read_text()
    assert "sendfile on;" in conf
    assert "/var/" not in conf and "/etc/" not in conf
    # the store's root is 0700 and its files 0600: nginx reads them as the user that started it
    assert os.stat(tmp_path / "store").st_mode & 0o077 == 0


async def test_stop_ends_it(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    assert NGINX is not None
    nginx = Nginx.files(NGINX, root, tmp_path / "nginx")
    await nginx.start()
    assert nginx.process is not None and nginx.process.poll() is None
    nginx.stop()
    assert nginx.process.poll() is not None
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as http:
            await http.get(f"{nginx.url}/")


async def test_the_bench_readers_time_nginx_beside_another_reader(served: tuple[Nginx, bytes]) -> None:
    nginx, _ = served
    async with httpx.AsyncClient() as http:
        url = f"{nginx.url}/{KEY}"

        async def twice(offset: int, length: int | None) -> int:  # a second reader of the same bytes
            return await read_url(http, url, offset, length)

        readers = {"nginx": lambda o, n: read_url(http, url, o, n), "again": twice, "socket": read_socket_of(url)}
        rates = await whole_rates(readers, SIZE, rounds=2)
        times = await range_times(readers, SIZE, count=12)
    assert {k: len(v) for k, v in rates.items()} == {"nginx": 2, "again": 2, "socket": 2}
    assert {k: len(v) for k, v in times.items()} == {"nginx": 12, "again": 12, "socket": 12}
    assert RANGE_BYTES == 64 * 1024


def read_socket_of(url: str) -> Reader:
    return lambda offset, length: read_socket(url, offset, length)


async def test_the_socket_reader_counts_the_body_only_and_checks_the_status(served: tuple[Nginx, bytes]) -> None:
    nginx, _ = served
    url = f"{nginx.url}/{KEY}"
    assert await read_socket(url) == SIZE
    assert await read_socket(url, 5, RANGE_BYTES) == RANGE_BYTES
    assert await read_socket(url, SIZE - 7) == 7
    with pytest.raises(AssertionError):
        await read_socket(f"{nginx.url}/recordings/room/missing.mp4")


async def test_when_nginx_cannot_start_the_error_gives_its_own_words(tmp_path: Path) -> None:
    assert NGINX is not None
    with socket.socket() as taken:  # the port is held by something else: nginx says so and exits
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        nginx = Nginx(NGINX, tmp_path / "nginx", port, file_server(tmp_path, port))
        with pytest.raises(RuntimeError, match="Address already in use"):
            await nginx.start()
    assert nginx.process is not None and nginx.process.poll() is not None
