"""Builds and serves the API and the recorder (granian by default, hypercorn by `CALLREC_HTTP_SERVER`); used by the
CLI and the end-to-end tests."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from granian.constants import Interfaces
from granian.log import LogLevels
from granian.server.embed import Server as GranianServer
from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart
from temporalio.client import Client

from callrec.api.app import create_app
from callrec.api.services import Services
from callrec.domain.settings import HttpServer, Settings
from callrec.metrics import RECORDER, RECORDER_HTTP
from callrec.metrics.http import HttpMetrics, add_metrics_route
from callrec.recorder.pool import RecorderNode, add_drain_route
from callrec.recorder.service import Recorder, create_recorder_app
from callrec.recorder.whip import Whip, WhipConfig
from callrec.storage.catalog import Catalog
from callrec.storage.stores import make_store
from callrec.temporal import connect

log = logging.getLogger(__name__)
GRACE_S = 30  # how long requests in flight may take to finish once the server stops
# Requests handled at once. granian's embedded server otherwise takes 128 (its listen backlog), and requests that wait
# (a start waits for the recorder's `started`, a download streams) then shut out the callbacks they wait for: 200
# recordings started at once never got their `started` callbacks through and all timed out (bench/workflows.py).
MAX_CONCURRENT_REQUESTS = 10_000
BACKLOG = 1024


async def build_api(settings: Settings) -> Quart:
    settings.require_api_secrets()  # before anything connects: a missing or weak secret stops it with one line
    settings.require_media_offload()
    svc = Services(
        settings=settings,
        catalog=Catalog.from_url(settings.catalog_url),
        store=await make_store(settings),
        temporal=await connect(settings),
    )
    app = create_app(svc)

    @app.after_serving
    async def close_catalog() -> None:
        await svc.catalog.close()

    return app


async def build_recorder(settings: Settings, http: httpx.AsyncClient) -> tuple[Quart, RecorderNode]:
    """The recorder's HTTP app (Talk protocol, WHIP, drain) and its pool side (worker and registration)."""
    whip = WhipConfig.from_settings(settings)  # refuses to start without a usable CALLREC_PUBLISH_SECRET
    try:
        recorder = Recorder(
            settings.require_recording_secret(),
            settings.recorder_backend_urls,
            # Its own directory: what is in it at start-up was left by an earlier process of this recorder.
            Path(settings.data_dir) / "recorder" / settings.recorder_id,
            http,
            progress_every_s=settings.recorder_silence_timeout_s / 4,
            replay_window_s=settings.recorder_nonce_ttl_s,
            replay_max_entries=settings.recorder_replay_max_entries,
            name=settings.recorder_id,
        )
    except ValueError as exc:
        setting = "CALLREC_RECORDER_BACKENDS (default CALLREC_PUBLIC_URL and CALLREC_API_URL)"
        raise SystemExit(f"the recorder's back ends, {setting}: {exc}") from None
    sessions = Whip(recorder, whip)
    node = RecorderNode(settings, recorder, sessions, await make_store(settings))
    app = create_recorder_app(recorder, sessions)
    add_drain_route(app, node)
    add_metrics_route(app, RECORDER, settings)
    app.asgi_app = HttpMetrics(app.asgi_app, app.url_map, RECORDER_HTTP)  # type: ignore[method-assign,assignment,arg-type]
    return app, node


async def serve_recorder(
    settings: Settings, app: Quart, node: RecorderNode, client: Client, shutdown: Callable[..., Awaitable[None]]
) -> None:
    """Serves the recorder until `shutdown`; its worker runs until the recordings it finished are reported."""
    stop = asyncio.Event()
    pool_side = asyncio.ensure_future(node.run(client, stop))
    try:
        await serve_app(app, settings.recorder_host, settings.recorder_port, shutdown, settings.http_server)
    finally:
        stop.set()
        await pool_side


async def serve_app(
    app: Quart, host: str, port: int, shutdown: Callable[..., Awaitable[None]], server: HttpServer = "granian"
) -> None:
    """Serves `app` until `shutdown` returns; requests in flight then get up to 30 s to finish."""
    if server == "hypercorn":
        await _serve_hypercorn(app, host, port, shutdown)
    else:
        await _serve_granian(app, host, port, shutdown)


async def _serve_hypercorn(app: Quart, host: str, port: int, shutdown: Callable[..., Awaitable[None]]) -> None:
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.graceful_timeout = GRACE_S
    config.errorlog = logging.getLogger("hypercorn.error")  # through callrec's log format (callrec.logs), once
    config.accesslog = None  # the app writes the access line, with the route and the recording's ids
    await serve(app, config, shutdown_trigger=shutdown)


class _NotExperimental(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "experimental" not in record.getMessage()  # its embedded server says so at every start


_NOT_EXPERIMENTAL = _NotExperimental()


async def _serve_granian(app: Quart, host: str, port: int, shutdown: Callable[..., Awaitable[None]]) -> None:
    """granian's embedded server: its Rust side does the HTTP (and `http.response.pathsend`), the app runs in this
    event loop, Quart's before/after_serving through the ASGI lifespan."""
    # Its loggers only get a level: their lines go up to callrec's handlers (callrec.logs), in callrec's format.
    levels_only = {"incremental": True, "formatters": {}, "handlers": {}, "loggers": {"_granian": {}}}
    logging.getLogger("_granian").addFilter(_NOT_EXPERIMENTAL)  # once, however many servers a process runs
    server = GranianServer(
        app,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        log_level=LogLevels.warning,
        log_dictconfig=levels_only,
        log_access=False,  # the app writes the access line, with the route and the recording's ids
        backlog=BACKLOG,
        backpressure=MAX_CONCURRENT_REQUESTS,
    )
    server.workers_kill_timeout = GRACE_S

    async def stop() -> None:
        await shutdown()
        server.stop()  # type: ignore[no-untyped-call]

    stopping = asyncio.ensure_future(stop())
    try:
        await server.serve()
    except TimeoutError:  # requests still running GRACE_S after the stop: granian gave up its worker, lifespan too
        log.warning("requests were still in flight %s s after the server stopped; stopping without them", GRACE_S)
        await app.shutdown()  # the after_serving hooks (the catalog's close) that the lifespan would have run
    finally:
        stopping.cancel()


async def run_api(settings: Settings, shutdown: Callable[..., Awaitable[None]]) -> None:
    app = await build_api(settings)
    await serve_app(app, settings.api_host, settings.api_port, shutdown, settings.http_server)


async def run_recorder(settings: Settings) -> None:
    """`callrec recorder`: serves until SIGTERM / SIGINT or `callrec recorder drain`, then drains (takes nothing new,
    finishes its recordings) and stops."""
    async with httpx.AsyncClient(timeout=30) as http:
        app, node = await build_recorder(settings, http)
        await serve_recorder(settings, app, node, await connect(settings), node.until_drained)


def until_signalled() -> Callable[[], Awaitable[None]]:
    """A shutdown trigger for `serve_app` that fires on SIGINT/SIGTERM."""
    import signal

    async def wait() -> None:
        event = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, event.set)
        await event.wait()

    return wait
