"""Shared fixtures: a real Temporal dev server, moto's S3 server on loopback, catalogs, and the whole stack."""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from moto.server import ThreadedMotoServer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from bench.common import free_port  # one source of loopback ports for tests and benchmarks
from callrec.api.services import Services
from callrec.domain.recording import SEARCH_ATTRIBUTES
from callrec.domain.settings import Settings
from callrec.recorder.pool import RecorderNode
from callrec.servers import build_recorder, serve_app, serve_recorder
from callrec.storage.catalog import Catalog, create_schema
from callrec.storage.objects import ObjectStore
from callrec.storage.stores import make_store
from callrec.temporal import bundled_binary
from callrec.worker.main import build_worker

API_KEY = "test-api-key-0123456789abcdef0123456789"  # at least 32 characters, as `callrec api` demands
TOKEN_SECRET = "test-token-secret-0123456789abcdef012345"  # its own secret, at least 32 bytes
PUBLISH_SECRET = "test-publish-secret-0123456789abcdef0123"  # WHIP publish tokens: its own secret too
SECRET = "test-recording-secret"
POSTGRES_URL = os.environ.get("CALLREC_TEST_POSTGRES_URL")
# `callrec dev` records where its stack runs under XDG_STATE_HOME (storage/dev_stack.py), and the operator commands
# read it: the tests' stacks (and `callrec` subprocesses) keep to their own, never a developer's.
os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="callrec-test-state-")


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=bundled_binary("temporal"),
        data_converter=pydantic_data_converter,
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_log_level="error",
    )
    async with env:
        yield env


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    yield f"127.0.0.1:{port}"
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
async def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty catalog database: SQLite always, PostgreSQL when CALLREC_TEST_POSTGRES_URL is set."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'catalog.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("CALLREC_TEST_POSTGRES_URL is not set")
    name = f"callrec_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


@pytest.fixture
async def catalog(catalog_url: str) -> AsyncIterator[Catalog]:
    """An empty catalog with its schema, on each database `catalog_url` gives."""
    catalog = Catalog.from_url(catalog_url)
    await create_schema(catalog.engine)
    yield catalog
    await catalog.close()


def s3_overrides(endpoint: str) -> dict[str, object]:
    """Settings for a stack whose object store is a fresh bucket on the loopback S3 server."""
    return {
        "s3_endpoint": endpoint,
        "s3_access_key": "testing",
        "s3_secret_key": "testing",
        "s3_bucket": f"b-{uuid.uuid4().hex[:12]}",
    }


def make_settings(tmp_path: Path, temporal_address: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path,
        "api_key": API_KEY,
        "token_secret": TOKEN_SECRET,
        "publish_secret": PUBLISH_SECRET,
        "recording_secret": SECRET,
        "temporal_address": temporal_address,
        "task_queue": f"callrec-{uuid.uuid4().hex[:8]}",
        "api_port": free_port(),
        "recorder_port": free_port(),
        "start_timeout_s": 20,
        "upload_timeout_s": 60,
        # tests record small pictures, several at once: admission is tested on its own (test_recorder_pool.py)
        "recorder_capacity": 50,
    }
    values |= overrides
    values.setdefault("api_url", f"http://127.0.0.1:{values['api_port']}")
    values.setdefault("recorder_url", f"http://127.0.0.1:{values['recorder_port']}")
    return Settings(**values)  # type: ignore[arg-type]


@dataclass
class Stack:
    settings: Settings
    api: httpx.AsyncClient
    catalog: Catalog
    store: ObjectStore
    client: Client


async def wait_registered(api: httpx.AsyncClient, recorder_id: str) -> None:
    """Until the recorder `recorder_id` is in the pool and takes recordings (it registers every few seconds)."""
    for _ in range(300):
        listed = (await api.get("/api/v1/recorders")).json().get("recorders", [])
        if any(r["id"] == recorder_id and r["state"] == "active" for r in listed):
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"recorder {recorder_id} did not register")


async def wait_until_up(url: str) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(200):
            try:
                await http.get(url)
                return
            except httpx.HTTPError:
                await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


class StackFactory:
    """Runs API, worker and (optionally) the built-in recorder in this event loop, over real HTTP on loopback."""

    def __init__(self, env: WorkflowEnvironment, tmp_path: Path) -> None:
        self.env = env
        self.client = env.client  # the stacks' Temporal client; a test may give its own (tracing: connect()'s)
        self.tmp_path = tmp_path
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.closers: list[object] = []
        self.task_queues: set[str] = set()
        self.recorder_stops: dict[int, asyncio.Event] = {}
        self.recorder_tasks: dict[int, asyncio.Task[None]] = {}
        self.nodes: dict[int, RecorderNode] = {}  # the recorders' pool sides, by port

    async def start(
        self,
        *,
        recorder: bool = True,
        client: Client | None = None,
        worker_overrides: dict[str, object] | None = None,
        **overrides: object,
    ) -> Stack:
        """`client`: the Temporal client of the API and the worker (default the factory's); `worker_overrides`:
        settings only the worker gets (e.g. another path to the object store)."""
        from callrec.api.app import create_app

        address = self.env.client.service_client.config.target_host
        settings = make_settings(self.tmp_path, address, **overrides)
        self.task_queues.add(settings.task_queue)
        catalog = Catalog.from_url(settings.catalog_url)
        await create_schema(catalog.engine)
        store = await make_store(settings)
        client = client or self.client
        http = httpx.AsyncClient(timeout=30)
        self.closers += [http, catalog]
        worker_settings = settings.model_copy(update=worker_overrides or {})
        worker_store = store if not worker_overrides else await make_store(worker_settings)
        worker = build_worker(client, worker_settings, catalog, worker_store, http)
        app = create_app(Services(settings=settings, catalog=catalog, store=store, temporal=client))
        self.tasks.append(asyncio.create_task(self._run_worker(worker)))
        self.tasks.append(
            asyncio.create_task(serve_app(app, "127.0.0.1", settings.api_port, self.stop.wait, settings.http_server))
        )
        if recorder:
            await self.serve_recorder(settings, http)
        api = await self._client(settings.api_port)
        if recorder:
            await wait_registered(api, settings.recorder_id)
        return Stack(settings=settings, api=api, catalog=catalog, store=store, client=client)

    async def serve_recorder(self, settings: Settings, http: httpx.AsyncClient) -> None:
        """The built-in recorder on `settings.recorder_port`, until the factory closes or `restart_recorder`."""
        stopped = asyncio.Event()
        self.recorder_stops[settings.recorder_port] = stopped

        async def until_stopped() -> None:
            waiters = [asyncio.ensure_future(event.wait()) for event in (self.stop, stopped)]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()

        app, node = await build_recorder(settings, http)
        self.nodes[settings.recorder_port] = node
        task = asyncio.create_task(serve_recorder(settings, app, node, self.client, until_stopped))
        self.tasks.append(task)
        self.recorder_tasks[settings.recorder_port] = task
        await wait_until_up(f"http://127.0.0.1:{settings.recorder_port}/health")

    async def restart_recorder(self, stack: Stack) -> None:
        """Stops the stack's recorder (it ends its WHIP sessions and recordings, as a restarted recorder does) and
        serves a fresh one, with nothing of the old one's state, on the same port."""
        await self.stop_recorder(stack)
        http = httpx.AsyncClient(timeout=30)
        self.closers.append(http)
        await self.serve_recorder(stack.settings, http)

    async def stop_recorder(self, stack: Stack) -> None:
        """Stops the stack's recorder; the pool still lists it until its registration is stale (15 s)."""
        port = stack.settings.recorder_port
        self.recorder_stops[port].set()
        await asyncio.wait_for(self.recorder_tasks[port], 60)

    async def start_api(self, stack: Stack) -> httpx.AsyncClient:
        """A second API server on the same catalog file, object store and Temporal, as another process would be."""
        from callrec.api.app import create_app

        settings = stack.settings.model_copy(update={"api_port": free_port()})
        catalog = Catalog.from_url(settings.catalog_url)
        self.closers.append(catalog)
        app = create_app(Services(settings=settings, catalog=catalog, store=stack.store, temporal=stack.client))
        self.tasks.append(
            asyncio.create_task(serve_app(app, "127.0.0.1", settings.api_port, self.stop.wait, settings.http_server))
        )
        return await self._client(settings.api_port)

    async def _client(self, port: int) -> httpx.AsyncClient:
        base = f"http://127.0.0.1:{port}"
        await wait_until_up(f"{base}/health")
        api = httpx.AsyncClient(base_url=base, headers={"X-API-KEY": API_KEY}, timeout=60)
        self.closers.append(api)
        return api

    async def _run_worker(self, worker: object) -> None:
        async with worker:  # type: ignore[attr-defined]
            await self.stop.wait()

    async def save_histories(self, directory: Path) -> None:
        """Keeps this stack's workflow histories for the replay tests (CALLREC_SAVE_HISTORIES=dir)."""
        directory.mkdir(parents=True, exist_ok=True)
        client = self.env.client
        async for execution in client.list_workflows('WorkflowType="RecordingWorkflow"'):
            if execution.task_queue in self.task_queues and execution.close_time is not None:
                # each run (a reset makes another): named by the workflow id and the run's
                handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
                history = await handle.fetch_history()
                (directory / f"{execution.id}.{execution.run_id[:8]}.json").write_text(history.to_json())

    async def close(self) -> None:
        if target := os.environ.get("CALLREC_SAVE_HISTORIES"):
            await self.save_histories(Path(target))
        self.stop.set()
        await asyncio.wait_for(asyncio.gather(*self.tasks, return_exceptions=True), 90)
        for closer in reversed(self.closers):
            if isinstance(closer, httpx.AsyncClient):
                await closer.aclose()
            elif isinstance(closer, Catalog):
                await closer.close()


@pytest.fixture
async def stacks(temporal_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[StackFactory]:
    factory = StackFactory(temporal_env, tmp_path)
    yield factory
    await factory.close()


@pytest.fixture
async def scripted() -> AsyncIterator[object]:
    from tests.recording_server import ScriptedRecordingServer

    server = ScriptedRecordingServer()
    task = asyncio.create_task(serve_app(server.app, "127.0.0.1", server.port, server.stop.wait))
    await wait_until_up(f"http://127.0.0.1:{server.port}/health")
    yield server
    server.stop.set()
    await task
