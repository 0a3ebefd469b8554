"""An access log line per HTTP request (the API's and the recorder's), carrying the ids the request is about.

The line is written by an ASGI middleware around the whole app, once the response is sent: method, route template
(never the path or query string: tokens and secrets travel in URLs), status and duration. The app's hooks tell
it the route and bind the ids from the route's arguments (`recording_id`, `room_id`, a Talk `token`, which is the
room's id) for every line logged while the request is handled; what the handler binds on top (the recording a
start created, the one a callback is about) lands in the access line too.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, cast

import structlog
from quart import Quart, Response, request

from callrec.logs import IDS, bind_recording, get_logger

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

_NOTES = "callrec.access"  # in the ASGI scope: what the app learned about the request for its access line
_ROUTE_IDS = {"recording_id": "recording_id", "room_id": "room_id", "token": "room_id"}
log = get_logger("callrec.access")


def routine() -> None:
    """The request being handled repeats every few seconds (a health probe, a recorder's registration): its
    access line is a debug line when it succeeds."""
    if (notes := _notes()) is not None:
        notes["routine"] = True


def note_route(scope: Scope, route: str) -> None:
    """The route template of a request answered outside the app's routing (the recording upload)."""
    if (notes := scope.get(_NOTES)) is not None:
        notes["route"] = route


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]], send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        structlog.contextvars.clear_contextvars()
        notes: dict[str, Any] = {}
        scope[_NOTES] = notes
        status: int | None = None
        started = time.perf_counter()

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            quiet = notes.pop("routine", False) and status is not None and status < 400
            (log.debug if quiet else log.info)(
                "request",
                method=scope["method"],
                route=notes.pop("route", "<no route>"),
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
                **notes,
            )
            structlog.contextvars.clear_contextvars()


def _notes() -> dict[str, Any] | None:
    return cast(dict[str, Any] | None, request.scope.get(_NOTES))


async def _bind_route() -> None:
    notes = _notes()
    if notes is not None and request.url_rule is not None:
        notes["route"] = request.url_rule.rule
    found = {_ROUTE_IDS[name]: value for name, value in (request.view_args or {}).items() if name in _ROUTE_IDS}
    bind_recording(**{key: value for key, value in found.items() if isinstance(value, str)})


async def _keep_ids(response: Response) -> Response:
    """The ids bound while handling (in the handler's task) go to the access line (written outside it)."""
    notes = _notes()
    if notes is not None:
        bound = structlog.contextvars.get_contextvars()
        notes.update({key: bound[key] for key in IDS if key in bound})
    return response


def log_requests(app: Quart) -> None:
    """An access line per request to `app`, and its route's ids on every line logged while handling it."""
    app.before_request_funcs[None].insert(0, _bind_route)  # first: a request refused by a hook is logged too
    app.after_request_funcs[None].append(_keep_ids)
    app.asgi_app = AccessLog(app.asgi_app)  # type: ignore[method-assign,assignment,arg-type]
