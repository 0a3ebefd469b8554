"""`GET /health` says whether a recording can start now: catalog, object store, Temporal, a worker polling the
task queue, and the recording server. Up/down for anyone; the reasons only with the API key."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from callrec.api.app import create_app
from callrec.api.services import Services
from callrec.domain.pool import RecorderReport
from callrec.storage.catalog import Catalog, create_schema
from callrec.storage.objects import S3ObjectStore
from callrec.storage.pool import RecorderPool
from tests.conftest import API_KEY, Stack, StackFactory, free_port

PARTS = ("catalog", "objectStore", "temporal", "worker", "recorder")


async def health_when_up(api: httpx.AsyncClient, timeout: float = 20) -> httpx.Response:
    """The worker starts polling a moment after the stack is up: ask until it has."""
    deadline = time.monotonic() + timeout
    while True:
        response = await api.get("/health")
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.1)


async def app_health(stack: Stack, headers: dict[str, str] | None = None, **overrides: Any) -> tuple[int, Any]:
    """/health of an API on the stack's catalog, store and Temporal, with other settings (another process's view)."""
    settings = stack.settings.model_copy(update=overrides)
    app = create_app(Services(settings=settings, catalog=stack.catalog, store=stack.store, temporal=stack.client))
    response = await app.test_client().get("/health", headers=headers or {})
    return response.status_code, await response.get_json()


async def test_a_running_stack_is_up_in_every_part(stacks: StackFactory) -> None:
    stack = await stacks.start()
    response = await health_when_up(stack.api)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "up"} | {part: {"status": "up"} for part in PARTS}


async def test_no_worker_and_no_recorder_is_a_503_that_tells_anonymous_callers_no_more_than_down(
    stacks: StackFactory,
) -> None:
    stack = await stacks.start(recorder=False)
    idle_queue = f"nobody-polls-{uuid.uuid4().hex[:8]}"
    broken = {"task_queue": idle_queue}  # and no recorder in the pool

    status, body = await app_health(stack, **broken)
    assert status == 503
    assert body == {
        "status": "down",
        "catalog": {"status": "up"},
        "objectStore": {"status": "up"},
        "temporal": {"status": "up"},
        "worker": {"status": "down"},
        "recorder": {"status": "down"},
    }

    status, body = await app_health(stack, {"X-API-KEY": API_KEY}, **broken)
    assert status == 503
    assert idle_queue in body["worker"]["error"] and "callrec worker" in body["worker"]["error"]
    assert "no built-in recorder registered" in body["recorder"]["error"]
    assert "error" not in body["catalog"]

    status, body = await app_health(stack, {"X-API-KEY": "wrong"}, **broken)
    assert status == 401 and "X-API-KEY" in body["message"]


async def test_a_dead_object_store_is_down_and_its_reason_is_for_the_api_key_only(
    stacks: StackFactory, tmp_path: Path
) -> None:
    stack = await stacks.start()
    await health_when_up(stack.api)
    catalog = Catalog.from_url(f"sqlite+aiosqlite:///{tmp_path / 'other.db'}")
    await create_schema(catalog.engine)
    report = RecorderReport(id="rec", url="http://rec:8090", taskQueue="callrec-recorder-rec", capacity=1)
    await RecorderPool(catalog).register(report, int(time.time() * 1000))  # a recorder in this catalog's pool
    dead_store = S3ObjectStore(f"127.0.0.1:{free_port()}", "k", "s", "bucket")
    app = create_app(Services(settings=stack.settings, catalog=catalog, store=dead_store, temporal=stack.client))
    try:
        anonymous = await app.test_client().get("/health")
        admin = await app.test_client().get("/health", headers={"X-API-KEY": API_KEY})
        body, detailed = await anonymous.get_json(), await admin.get_json()
    finally:
        await catalog.close()
    assert anonymous.status_code == admin.status_code == 503
    assert body["objectStore"] == {"status": "down"}
    assert all(body[part] == {"status": "up"} for part in ("catalog", "temporal", "worker", "recorder")), body
    assert detailed["objectStore"]["status"] == "down" and detailed["objectStore"]["error"]


async def test_the_recorder_checked_is_the_configured_egress(stacks: StackFactory, scripted: Any) -> None:
    stack = await stacks.start(recorder=False)
    admin = {"X-API-KEY": API_KEY}

    status, body = await app_health(stack, admin, egress="talk", talk_recording_server=None)
    assert body["recorder"] == {"status": "down", "error": "CALLREC_TALK_RECORDING_SERVER is not set "
                                "(CALLREC_EGRESS=talk needs it)"}  # fmt: skip
    status, body = await app_health(
        stack, admin, egress="talk", talk_recording_server=f"http://127.0.0.1:{scripted.port}"
    )
    assert body["recorder"] == {"status": "up"}  # it answers (any answer: a Talk server has no health endpoint)
    status, body = await app_health(stack, admin, egress="livekit", livekit_url=f"ws://127.0.0.1:{scripted.port}")
    assert body["recorder"] == {"status": "up"}
    status, body = await app_health(stack, admin, egress="livekit", livekit_url=None)
    assert body["recorder"]["status"] == "down" and "CALLREC_LIVEKIT_URL" in body["recorder"]["error"]
