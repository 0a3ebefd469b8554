"""The API's outermost ASGI layer, ahead of Quart and of the `/store` upload: HTTP hygiene for every request.

- A request with both `Content-Length` and `Transfer-Encoding` is refused (400) and its connection closed:
  the two disagree on where the body ends, which is how requests are smuggled past a proxy (RFC 9112 6.1).
- Every response carries `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`: media is never
  sniffed into something a browser runs, and a recording URL with its secret never leaks in a `Referer`.
- An answer sent before the request's body was read (a 413 on its Content-Length, a 401 before the upload) says
  `Connection: close`: the unread rest of the body must not be taken for the next request on the connection.
- A body cut short (a malformed chunked framing, which granian reports as the client leaving) is a 400, where the
  app answered nothing; a client that did leave never sees it.
- CORS for browser apps (`CALLREC_CORS_ORIGINS`): a preflight from an allowed origin is answered here, before
  authentication (a preflight carries no credentials); answers to an allowed origin carry its
  `Access-Control-Allow-Origin`. Other origins get no CORS headers, so browsers keep them out.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from quart.json.provider import DefaultJSONProvider

from callrec.domain.cors import ANY_ORIGIN

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

SECURITY_HEADERS: Headers = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
CLOSE = (b"connection", b"close")
# Answers without content describe none: no Content-Type, and no Content-Length (for a 304, only the 200's own may be
# sent, and callrec does not send it). Quart gives every answer a Content-Type.
NO_CONTENT = (204, 304)
CONTENT_HEADERS = {b"content-type", b"content-length"}
CORS_METHODS = "GET, POST, PUT, DELETE, OPTIONS"
CORS_REQUEST_HEADERS = (
    "X-API-KEY, Authorization, X-Room-Member-Token, X-Fields, Range, Content-Type, "
    "If-None-Match, If-Modified-Since, If-Range, If-Match, If-Unmodified-Since"
)
CORS_EXPOSED_HEADERS = (
    "Content-Range, Content-Length, Accept-Ranges, Content-Disposition, Location, Retry-After, WWW-Authenticate, "
    "X-Skipped-Recordings, Link, Accept-Post, ETag, Last-Modified"
)
CORS_MAX_AGE_S = 600
AMBIGUOUS_LENGTH = "Send either Content-Length or Transfer-Encoding, not both"
NESTED_TOO_DEEPLY = "Malformed body: JSON nested too deeply"
BODY_CUT_SHORT = "Malformed body: it ended before its declared length or its chunked framing is broken"


class HttpGuard:
    def __init__(self, app: ASGIApp, cors_origins: Sequence[str] = ()) -> None:
        self.app = app
        self.any_origin = ANY_ORIGIN in cors_origins
        self.origins = frozenset(o.encode() for o in cors_origins if o != ANY_ORIGIN)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        names: set[bytes] = set()
        origin: bytes | None = None
        for name, value in scope["headers"]:
            name = name.lower()
            names.add(name)
            if name == b"origin":
                origin = value
        if b"content-length" in names and b"transfer-encoding" in names:
            await self._refuse(send, 400, "Bad Request", AMBIGUOUS_LENGTH)
            return
        cors = self._cors_headers(origin)
        if cors is not None and scope["method"] == "OPTIONS" and b"access-control-request-method" in names:
            await self._preflight(send, cors)
            return
        extra = SECURITY_HEADERS + (cors or []) + self._vary()
        body_left = b"transfer-encoding" in names or _declares_a_body(scope["headers"])

        cut_short = started = False

        async def receiving() -> Message:
            nonlocal body_left, cut_short
            message = await receive()
            if body_left and (message["type"] != "http.request" or not message.get("more_body", False)):
                cut_short = message["type"] == "http.disconnect"
                body_left = False
            return message

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = message.get("headers", [])
                if message["status"] in NO_CONTENT:  # RFC 9110 8.6, 15.3.5, 15.4.5
                    headers = [(name, value) for name, value in headers if name.lower() not in CONTENT_HEADERS]
                present = {name.lower() for name, _ in headers}
                added = [(name, value) for name, value in extra if name not in present or name == b"vary"]
                if body_left and b"connection" not in present:
                    added.append(CLOSE)  # answered before the body was read: what is left of it is not a next request
                message = {**message, "headers": [*headers, *added]}
            await send(message)

        await self.app(scope, receiving if body_left else receive, send_with_headers)
        if cut_short and not started:
            # The body ended before its end: the client left (this answer then goes nowhere), or granian found its
            # chunked framing malformed, which it reports as a disconnect; Quart then answers nothing, and granian
            # would make that a 500.
            await self._refuse(send, 400, "Bad Request", BODY_CUT_SHORT)

    def _cors_headers(self, origin: bytes | None) -> Headers | None:
        """The CORS headers for a request from `origin`, or None if that origin is not allowed (or not a browser)."""
        if origin is None:
            return None
        if self.any_origin:
            allowed = b"*"
        elif origin.lower() in self.origins:
            allowed = origin
        else:
            return None
        return [
            (b"access-control-allow-origin", allowed),
            (b"access-control-expose-headers", CORS_EXPOSED_HEADERS.encode()),
        ]

    def _vary(self) -> Headers:
        """Answers that depend on the Origin say so, so that caches do not serve one origin's answer to another."""
        return [(b"vary", b"Origin")] if self.origins else []

    async def _preflight(self, send: Send, cors: Headers) -> None:
        headers = cors + [
            (b"access-control-allow-methods", CORS_METHODS.encode()),
            (b"access-control-allow-headers", CORS_REQUEST_HEADERS.encode()),
            (b"access-control-max-age", str(CORS_MAX_AGE_S).encode()),
            *SECURITY_HEADERS,
            *self._vary(),
        ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    @staticmethod
    async def _refuse(send: Send, status: int, error: str, message: str) -> None:
        """An error answer after which the connection is closed: the rest of the request cannot be trusted."""
        body = json.dumps({"error": error, "message": message}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            *SECURITY_HEADERS,
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class BoundedJSONProvider(DefaultJSONProvider):
    """Quart's JSON, where a document nested too deeply for the parser is malformed (ValueError), not a crash."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return super().loads(s, **kwargs)
        except RecursionError as exc:
            raise ValueError(NESTED_TOO_DEEPLY) from exc


def _declares_a_body(headers: Sequence[tuple[bytes, bytes]]) -> bool:
    """A Content-Length other than 0 (a malformed one counts as a body)."""
    return any(name.lower() == b"content-length" and value.strip().lstrip(b"0") for name, value in headers)
