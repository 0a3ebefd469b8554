"""The console's sign-in session: one HttpOnly cookie holding an API token, and CSRF protection for its use.

A signed-in browser holds `callrec_session` (`user.<admin token>` or `member.<member token>`, HttpOnly,
SameSite=Strict, Secure when the console is served over HTTPS) and `callrec_csrf` (a random value, also HttpOnly,
that every console page repeats in its forms and in `<body data-csrf>`). `SessionBridge`, an ASGI layer in front
of the API, turns the session into the credential header the API already takes (`Authorization: Bearer` or
`X-Room-Member-Token`) for `/api/v1/` requests that carry no credential of their own, so every access rule stays
the API's. A state-changing request (not GET/HEAD/OPTIONS) counts the cookie only with `X-CSRF-Token` equal to
`callrec_csrf` (double submit) and, when the browser names one, an `Origin` of this host; else it is a 403.
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Iterable
from http.cookies import CookieError, SimpleCookie
from typing import Literal
from urllib.parse import urlsplit

from callrec.api.guard import SECURITY_HEADERS, ASGIApp, Receive, Scope, Send
from callrec.domain.proxies import is_trusted
from callrec.domain.settings import Settings

SESSION_COOKIE = "callrec_session"
CSRF_COOKIE = "callrec_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CREDENTIAL_HEADERS = frozenset({b"x-api-key", b"authorization", b"x-room-member-token"})
MAX_COOKIE_VALUE = 4096
SessionKind = Literal["user", "member"]
CSRF_REFUSED = "The console session needs its X-CSRF-Token and a same-origin request for this"


def new_csrf() -> str:
    return secrets.token_urlsafe(24)


def csrf_matches(sent: str | None, expected: str | None) -> bool:
    """Whether the token a form or request sent is the one of the browser's cookie (neither may be empty)."""
    if not sent or not expected:
        return False
    return hmac.compare_digest(sent.encode(), expected.encode())


def same_origin(origin: str | None, fetch_site: str | None, hosts: Iterable[str]) -> bool:
    """Whether a request a browser made comes from a page of this host: `Sec-Fetch-Site` when the browser sends
    it, and `Origin` when it names one. (Under `Referrer-Policy: no-referrer` a form's POST says `Origin: null`:
    then `Sec-Fetch-Site` must vouch for it.)"""
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    if origin is None:
        return True
    if origin == "null":
        return fetch_site is not None
    netloc = urlsplit(origin).netloc.lower()
    return bool(netloc) and netloc in {h.lower() for h in hosts if h}


def session_value(kind: SessionKind, token: str) -> str:
    return f"{kind}.{token}"


def read_session(value: str | None) -> tuple[SessionKind, str] | None:
    """The kind and token a session cookie holds, or None when it holds nothing usable."""
    if not value or len(value) > MAX_COOKIE_VALUE:
        return None
    kind, _, token = value.partition(".")
    if kind == "user" and token:
        return "user", token
    if kind == "member" and token:
        return "member", token
    return None


def parse_cookies(header: str) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


def credential_header(kind: SessionKind, token: str) -> tuple[bytes, bytes]:
    if kind == "user":
        return b"authorization", f"Bearer {token}".encode()
    return b"x-room-member-token", token.encode()


def request_hosts(settings: Settings, host: str | None, forwarded_host: str | None, peer: str | None) -> list[str]:
    """The hosts a same-origin request may name: the one it was sent to, `CALLREC_PUBLIC_URL`'s, and the
    `X-Forwarded-Host` a trusted proxy set (`callrec.api.baseurl`'s rule)."""
    hosts = [host or ""]
    if settings.public_url:
        hosts.append(urlsplit(settings.public_url).netloc)
    if forwarded_host and is_trusted(peer, settings.trusted_networks):
        hosts.append(forwarded_host.rsplit(",", 1)[-1].strip())
    return hosts


class SessionBridge:
    """For `/api/v1/` requests without a credential header: the console session's token as that header."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/v1/"):
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, str] = {}
        for name, value in scope["headers"]:
            name = name.lower()
            if name in CREDENTIAL_HEADERS:  # the caller chose its credential: the cookie does not count
                await self.app(scope, receive, send)
                return
            headers[name] = value.decode("latin-1")
        cookies = parse_cookies(headers.get(b"cookie", ""))
        session = read_session(cookies.get(SESSION_COOKIE))
        if session is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] not in SAFE_METHODS:
            peer = (scope.get("client") or (None,))[0]
            hosts = request_hosts(self.settings, headers.get(b"host"), headers.get(b"x-forwarded-host"), peer)
            allowed = csrf_matches(headers.get(b"x-csrf-token"), cookies.get(CSRF_COOKIE)) and same_origin(
                headers.get(b"origin"), headers.get(b"sec-fetch-site"), hosts
            )
            if not allowed:
                await _refuse(send)
                return
        scope = {**scope, "headers": [*scope["headers"], credential_header(*session)]}
        await self.app(scope, receive, send)


async def _refuse(send: Send) -> None:
    body = json.dumps({"error": "Authorization Error", "message": CSRF_REFUSED}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *SECURITY_HEADERS,
    ]
    await send({"type": "http.response.start", "status": 403, "headers": headers})
    await send({"type": "http.response.body", "body": body})
