"""The floor of any ASGI app on callrec's HTTP server: the least an app can do to serve a stored file, on granian's
embedded server configured as `callrec api` runs it (same backlog and backpressure, callrec's event loop), in a
process of its own.

A GET of `/<key>` answers the whole file with `http.response.pathsend` (granian sends it, as callrec's /media does),
or one `bytes=start-end` range read with one `os.pread` in the event loop. No routing, authorization, catalog or
logging: what is left is the server's own cost per request. The media benchmark measures it in the same rounds as
callrec's /media and nginx, so its notes say how far the anchor rows can go with this server at all.

    python -m bench.asgi_floor DIRECTORY PORT
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from granian.constants import Interfaces
from granian.log import LogLevels
from granian.server.embed import Server

from callrec import event_loop
from callrec.servers import BACKLOG, MAX_CONCURRENT_REQUESTS

_RANGE = re.compile(rb"^bytes=(\d+)-(\d+)$")
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def floor_app(root: Path) -> Callable[[dict[str, Any], Receive, Send], Awaitable[None]]:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        path = root / scope["path"].lstrip("/")
        if not path.is_file():
            await send({"type": "http.response.start", "status": 404, "headers": [(b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        size = path.stat().st_size
        wanted = _RANGE.match(dict(scope["headers"]).get(b"range", b""))
        if wanted is None:
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % size)]})
            await send({"type": "http.response.pathsend", "path": str(path)})
            return
        start, end = int(wanted[1]), int(wanted[2])
        fd = os.open(path, os.O_RDONLY)
        try:
            body = os.pread(fd, end - start + 1, start)
        finally:
            os.close(fd)
        headers = [(b"content-length", b"%d" % len(body)), (b"content-range", b"bytes %d-%d/%d" % (start, end, size))]
        await send({"type": "http.response.start", "status": 206, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


async def serve(root: Path, port: int) -> None:
    server = Server(
        floor_app(root),
        address="127.0.0.1",
        port=port,
        interface=Interfaces.ASGI,
        log_level=LogLevels.warning,
        log_access=False,
        backlog=BACKLOG,
        backpressure=MAX_CONCURRENT_REQUESTS,
    )
    await server.serve()


if __name__ == "__main__":
    event_loop.run(serve(Path(sys.argv[1]), int(sys.argv[2])))
