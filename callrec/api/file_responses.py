"""Whole stored files sent by the HTTP server itself (`http.response.pathsend`, zero-copy) where it offers it.

Quart knows nothing of pathsend, so this is two small pieces. `file_body` builds a media response's body: when the
request came through `PathSend` on a server with the extension, the object is a file in the local store and the
whole of it is asked for, it notes the file's path in the ASGI scope and returns an empty body; otherwise it is the
store's streaming reader. `PathSend`, an ASGI wrapper around the app, then answers a noted request with the app's
`http.response.start` (status and headers, Content-Length included) and one `http.response.pathsend`, instead of
the empty body. The middlewares outside it (access log, metrics, guard) see the same start message either way.
Ranges always stream: pathsend has no offset or length.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any, cast

from quart import request

from callrec.storage.objects import LocalObjectStore, ObjectStore

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Send], Awaitable[None]]

EXTENSION = "http.response.pathsend"
_NOTE = "callrec.pathsend"  # in the scope, set by PathSend when the server offers the extension: the file to send


async def file_body(store: ObjectStore, key: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
    """The body of a response with ``length`` bytes of ``key`` from ``offset`` (None: to the end)."""
    note = cast(dict[str, str] | None, request.scope.get(_NOTE))
    if note is not None and offset == 0 and length is None and isinstance(store, LocalObjectStore):
        path = await store.file_path(key)
        if path is not None:
            note["path"] = str(path)
            return _nothing()
    return store.read(key, offset, length)


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator


class PathSend:
    """ASGI wrapper: a response `file_body` noted a path for goes out as start + `http.response.pathsend`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]], send: Send) -> None:
        offered = scope["type"] == "http" and EXTENSION in (scope.get("extensions") or {})
        if not offered or scope.get("method") != "GET":
            await self.app(scope, receive, send)
            return
        note: dict[str, str] = {}
        scope[_NOTE] = note
        start: Message | None = None

        async def sending(message: Message) -> None:
            nonlocal start
            if "path" not in note:
                await send(message)
            elif message["type"] == "http.response.start" and message["status"] == 200:
                start = message  # held until the (empty) body is done: the file is only sent once the app is
            elif start is not None and message["type"] == "http.response.body" and not message.get("body"):
                if not message.get("more_body", False):
                    await send(start)
                    await send({"type": EXTENSION, "path": note.pop("path")})
            else:  # the app answered something other than the file after all: as it made it
                note.pop("path")
                if start is not None:
                    await send(start)
                await send(message)

        await self.app(scope, receive, sending)
