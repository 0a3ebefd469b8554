"""Whole stored files go out through the HTTP server's `http.response.pathsend` when it offers it, and through the
app's streaming body when it does not; ranges always stream. Real servers on loopback: granian (which offers the
extension) through `serve_app`, hypercorn (which does not) directly. A spy around the app, where the access log
and the metrics sit, sees which messages reach the server."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart, Response, request

from callrec.api.file_responses import PathSend, file_body
from callrec.servers import serve_app
from callrec.storage.objects import LocalObjectStore
from tests.conftest import free_port, wait_until_up

KEY = "recordings/room/call.mp4"
DATA = os.urandom(3 * 1024 * 1024 + 123)  # more than the store's 1 MiB chunk: the streaming path sends several


class Spy:
    """Outside the app, like the access log: the type of every message the app sends to the server."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.sent: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def spying(message: Any) -> None:
            if scope["type"] == "http":
                self.sent.append(message["type"])
            await send(message)

        await self.app(scope, receive, send if scope["type"] != "http" else spying)


def file_app(store: LocalObjectStore) -> tuple[Quart, Spy]:
    app = Quart("file-responses")

    @app.get("/file")
    async def whole_or_range() -> Response:
        start = int(request.args.get("start", 0))
        length = int(request.args["length"]) if "length" in request.args else None
        body = await file_body(store, request.args.get("key", KEY), start, length)
        size = len(DATA) - start if length is None else length
        return Response(body, status=200 if length is None else 206, headers={"Content-Length": str(size)})

    @app.get("/health")
    async def health() -> str:
        return "ok"

    app.asgi_app = PathSend(app.asgi_app)  # type: ignore[method-assign]
    spy = Spy(app.asgi_app)
    app.asgi_app = spy  # type: ignore[method-assign,assignment]
    return app, spy


async def serve_hypercorn(app: Quart, port: int, stop: asyncio.Event) -> None:
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    await serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]


Server = Callable[[Quart, int, asyncio.Event], Awaitable[None]]


async def serve_ours(app: Quart, port: int, stop: asyncio.Event) -> None:
    await serve_app(app, "127.0.0.1", port, stop.wait)


@pytest.fixture
async def store(tmp_path: Path) -> LocalObjectStore:
    store = LocalObjectStore(tmp_path / "objects")

    async def data() -> AsyncIterator[bytes]:
        yield DATA

    await store.put_stream(KEY, data())
    return store


async def running(server: Server, app: Quart) -> tuple[str, asyncio.Event, asyncio.Task[None]]:
    port, stop = free_port(), asyncio.Event()
    task = asyncio.create_task(server(app, port, stop))
    await wait_until_up(f"http://127.0.0.1:{port}/health")
    return f"http://127.0.0.1:{port}", stop, task


@pytest.mark.parametrize(
    "server, offered", [(serve_ours, True), (serve_hypercorn, False)], ids=["granian", "hypercorn"]
)
async def test_whole_file_goes_through_pathsend_when_the_server_offers_it(
    store: LocalObjectStore, server: Server, offered: bool
) -> None:
    app, spy = file_app(store)
    base, stop, task = await running(server, app)
    try:
        async with httpx.AsyncClient(base_url=base) as http:
            spy.sent.clear()
            whole = await http.get("/file")
            assert whole.status_code == 200
            assert whole.content == DATA
            assert whole.headers["content-length"] == str(len(DATA))
            if offered:
                assert spy.sent == ["http.response.start", "http.response.pathsend"]
            else:  # the fallback: the store's reader, chunk by chunk, through the app
                assert "http.response.pathsend" not in spy.sent
                assert spy.sent.count("http.response.body") > 2

            spy.sent.clear()
            part = await http.get("/file", params={"start": 1_000_000, "length": 65_536})
            assert part.status_code == 206
            assert part.content == DATA[1_000_000:1_065_536]
            assert "http.response.pathsend" not in spy.sent  # pathsend has no offset: ranges stream

            # The same connection still serves the next request (keep-alive after a pathsend).
            again = await http.get("/file")
            assert again.content == DATA
    finally:
        stop.set()
        await task


async def test_a_symlink_out_of_the_objects_directory_is_never_sent_by_path(
    store: LocalObjectStore, tmp_path: Path
) -> None:
    outside = tmp_path / "secret.bin"
    outside.write_bytes(b"not an object")
    link = store.root / "recordings" / "room" / "link.mp4"
    link.symlink_to(outside)
    assert await store.file_path("recordings/room/link.mp4") is None
    assert await store.file_path("recordings/room/missing.mp4") is None
    assert await store.file_path("recordings/room") is None  # a directory
    with pytest.raises(ValueError):
        await store.file_path("../secret.bin")
    assert await store.file_path(KEY) == Path(os.path.realpath(store.root / KEY))
