"""HTTP requests counted by route template, and `GET /metrics` for whom `CALLREC_METRICS_TOKEN` /
`CALLREC_METRICS_PUBLIC` let in."""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from quart import Quart, Response, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, RequestRedirect

from callrec.domain.settings import Settings
from callrec.metrics import RECORDING_START, WORKER, HttpSeries

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # a path no route serves (404, 405): one series, whatever was asked

ASGIApp = Callable[[dict[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


class HttpMetrics:
    """ASGI middleware: times and counts every HTTP request by the route it matches in `url_map`.

    `starts` names the endpoints that start a recording (endpoint -> front door): their answers are also
    `callrec_recording_start_seconds`."""

    def __init__(self, app: ASGIApp, url_map: Map, series: HttpSeries, starts: Mapping[str, str] | None = None) -> None:
        self.app = app
        self.url_map = url_map
        self.series = series
        self.starts = dict(starts or {})

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500  # what the client gets when the app raises before it answers

        async def sending(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            elapsed = time.perf_counter() - began
            method = scope.get("method", "")
            method = method if method in METHODS else "other"
            route, endpoint = self.route(scope.get("path", ""), method)
            self.series.requests.labels(route, method, str(status)).inc()
            self.series.seconds.labels(route, method).observe(elapsed)
            if endpoint in self.starts:
                RECORDING_START.labels(self.starts[endpoint], str(status)).observe(elapsed)

    def route(self, path: str, method: str) -> tuple[str, str | None]:
        """The rule `path` matches (its template) and its endpoint; UNMATCHED when none does."""
        try:
            rule, _ = self.url_map.bind("callrec").match(path, method=method, return_rule=True)
        except (HTTPException, RequestRedirect):
            return UNMATCHED, None
        return rule.rule, rule.endpoint


# --- GET /metrics -----------------------------------------------------------------------------------------------


def refusal(settings: Settings) -> tuple[Response, int, dict[str, str]] | None:
    """Why this caller may not read /metrics (404: not served at all, 401: no or a wrong token), or None."""
    if settings.metrics_public:
        return None
    if not settings.metrics_token:
        message = "metrics are not served: set CALLREC_METRICS_TOKEN (or CALLREC_METRICS_PUBLIC=true)"
        return jsonify({"error": "Not Found", "message": message}), 404, {}
    scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), settings.metrics_token.encode()):
        message = "send Authorization: Bearer <CALLREC_METRICS_TOKEN>"
        return jsonify({"error": "Unauthorized", "message": message}), 401, {"WWW-Authenticate": "Bearer"}
    return None


def exposition(registry: CollectorRegistry) -> Response:
    """The registry in Prometheus' text format."""
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def add_metrics_route(app: Quart, registry: CollectorRegistry, settings: Settings) -> None:
    """`GET /metrics` on a plain app (the recorder's, the worker's own)."""

    @app.get("/metrics")
    async def metrics() -> Response | tuple[Response, int, dict[str, str]]:
        return refusal(settings) or exposition(registry)


def worker_metrics_app(settings: Settings) -> Quart:
    """The worker's HTTP server: `GET /metrics` and nothing else."""
    app = Quart("callrec-worker")
    add_metrics_route(app, WORKER, settings)
    return app
