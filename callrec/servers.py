"""Builds and serves the API and the recorder with hypercorn; used by the CLI and the end-to-end tests."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart

from callrec.api.app import create_app
from callrec.api.services import Services
from callrec.domain.settings import Settings
from callrec.recorder.service import Recorder, create_recorder_app
from callrec.recorder.whip import Whip, WhipConfig
from callrec.storage.catalog import Catalog
from callrec.storage.stores import make_store
from callrec.temporal import connect


async def build_api(settings: Settings) -> Quart:
    settings.require_api_secrets()  # before anything connects: a missing or weak secret stops it with one line
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


def build_recorder(settings: Settings, http: httpx.AsyncClient) -> Quart:
    whip = WhipConfig.from_settings(settings)  # refuses to start without a usable CALLREC_PUBLISH_SECRET
    try:
        recorder = Recorder(
            settings.require_recording_secret(),
            settings.recorder_backend_urls,
            Path(settings.data_dir) / "recorder",
            http,
            progress_every_s=settings.recorder_silence_timeout_s / 4,
            replay_window_s=settings.recorder_nonce_ttl_s,
            replay_max_entries=settings.recorder_replay_max_entries,
        )
    except ValueError as exc:
        setting = "CALLREC_RECORDER_BACKENDS (default CALLREC_PUBLIC_URL and CALLREC_API_URL)"
        raise SystemExit(f"the recorder's back ends, {setting}: {exc}") from None
    return create_recorder_app(recorder, Whip(recorder, whip))


async def serve_app(app: Quart, host: str, port: int, shutdown: Callable[..., Awaitable[None]]) -> None:
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.graceful_timeout = 30
    config.errorlog = logging.getLogger("hypercorn.error")  # through our logging config, once
    await serve(app, config, shutdown_trigger=shutdown)


async def run_api(settings: Settings, shutdown: Callable[..., Awaitable[None]]) -> None:
    await serve_app(await build_api(settings), settings.api_host, settings.api_port, shutdown)


async def run_recorder(settings: Settings, shutdown: Callable[..., Awaitable[None]]) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        await serve_app(build_recorder(settings, http), settings.recorder_host, settings.recorder_port, shutdown)


def until_signalled() -> Callable[[], Awaitable[None]]:
    """A hypercorn shutdown trigger that fires on SIGINT/SIGTERM."""
    import signal

    async def wait() -> None:
        event = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, event.set)
        await event.wait()

    return wait
