"""Failures that must be honest: no worker, a recorder that gave up, uploads that come late or twice.

A start or stop that no worker takes answers 503 naming the recording, and the recording ends up where the
client can see it (aborted, or stopped once a worker runs); a late upload still completes a recording that gave
up waiting for it; an upload never replaces a stored file.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from callrec.api.app import create_app
from callrec.api.services import Services
from callrec.domain.settings import Settings
from callrec.servers import serve_app
from callrec.worker.main import build_worker
from callrec.workflows.recording import RecordingWorkflow
from tests.conftest import API_KEY, SECRET, Stack, StackFactory, free_port, wait_until_up
from tests.helpers import OCS, backend_callback, create_room, join, mp4_bytes, outcome, upload, wait_for_status
from tests.recording_server import ScriptedRecordingServer

OCS_HEADERS = {"OCS-APIRequest": "true", "Accept": "application/json"}


async def idle_api(stacks: StackFactory, stack: Stack) -> tuple[Settings, httpx.AsyncClient]:
    """An API on the stack's catalog, store and Temporal whose task queue no worker polls (yet)."""
    settings = stack.settings.model_copy(
        update={"api_port": free_port(), "task_queue": f"idle-{uuid.uuid4().hex[:8]}", "update_timeout_s": 1.0}
    )
    stacks.task_queues.add(settings.task_queue)
    services = Services(settings=settings, catalog=stack.catalog, store=stack.store, temporal=stack.client)
    stacks.tasks.append(
        asyncio.create_task(serve_app(create_app(services), "127.0.0.1", settings.api_port, stacks.stop.wait))
    )
    base = f"http://127.0.0.1:{settings.api_port}"
    await wait_until_up(f"{base}/health")
    api = httpx.AsyncClient(base_url=base, headers={"X-API-KEY": API_KEY}, timeout=60)
    stacks.closers.append(api)
    return settings, api


@asynccontextmanager
async def worker(stack: Stack, settings: Settings) -> AsyncIterator[None]:
    """The worker of `settings.task_queue`, running while inside."""
    async with httpx.AsyncClient(timeout=30) as http:
        async with build_worker(stack.client, settings, stack.catalog, stack.store, http):
            yield


async def test_a_start_no_worker_takes_answers_503_naming_it_and_ends_aborted(
    stacks: StackFactory, scripted: ScriptedRecordingServer
) -> None:
    stack = await stacks.start(recorder=False, egress="talk", talk_recording_server=f"http://127.0.0.1:{scripted.port}")
    settings, api = await idle_api(stacks, stack)
    room_id = await create_room(api)
    await join(api, room_id, "Alice")

    response = await api.post("/api/v1/recordings", json={"roomId": room_id})

    assert response.status_code == 503 and int(response.headers["Retry-After"]) > 0
    (listed,) = (await api.get("/api/v1/recordings", params={"roomId": room_id})).json()["recordings"]
    recording_id = listed["recordingId"]
    assert recording_id in response.json()["message"] and "aborted" in response.json()["message"]
    assert (listed["status"], listed["error"]) == ("aborted", "nothing_recorded")  # not left `starting`

    async with worker(stack, settings):  # a worker comes: the recording resolves, the recorder is never asked
        state = await outcome(stack.client.get_workflow_handle_for(RecordingWorkflow.run, recording_id))
    assert (state.status, state.error) == ("aborted", "nothing_recorded")
    assert scripted.requests == []
    assert (await api.get(f"/api/v1/recordings/{recording_id}")).json()["status"] == "aborted"


async def test_a_stop_no_worker_takes_is_queued_meet_says_503_talk_accepts_and_it_happens_once_one_runs(
    stacks: StackFactory, scripted: ScriptedRecordingServer
) -> None:
    stack = await stacks.start(recorder=False, egress="talk", talk_recording_server=f"http://127.0.0.1:{scripted.port}")
    settings, api = await idle_api(stacks, stack)
    room_id = await create_room(api)
    await join(api, room_id, "Alice")
    async with worker(stack, settings):
        assert (await api.post(f"{OCS}/recording/{room_id}", headers=OCS_HEADERS, json={"status": 1})).is_success
        await scripted.wait_for("start")
        assert (await backend_callback(api, SECRET, "started", {"token": room_id, "status": 1})).is_success
        (row,) = await stack.catalog.recordings(room_id=room_id)
        recording_id = row.recording_id
        await wait_for_status(api, recording_id, {"active"})
    # The worker is gone: neither stop can reach the workflow in time.

    meet = await api.post(f"/api/v1/recordings/{recording_id}/stop")
    talk = await api.delete(f"{OCS}/recording/{room_id}", headers=OCS_HEADERS)

    assert meet.status_code == 503 and recording_id in meet.json()["message"]
    assert "queued" in meet.json()["message"]
    # Talk's stop answers once the request is accepted, as Talk does: the queued stop is durable.
    assert talk.status_code == 200, talk.text
    assert (await api.get(f"/api/v1/recordings/{recording_id}")).json()["status"] == "active"  # still recording
    assert [r["type"] for r in scripted.requests] == ["start"]

    async with worker(stack, settings):  # once a worker runs, the queued stop takes effect
        await scripted.wait_for("stop")
        await wait_for_status(api, recording_id, {"ending"})


async def test_a_late_upload_completes_the_recording_and_never_replaces_it(
    stacks: StackFactory, scripted: ScriptedRecordingServer, tmp_path: Path
) -> None:
    stack = await stacks.start(
        recorder=False,
        egress="talk",
        talk_recording_server=f"http://127.0.0.1:{scripted.port}",
        upload_timeout_s=1,
        start_timeout_s=20,
    )
    api = stack.api
    room_id = await create_room(api)
    await join(api, room_id, "Alice")
    pending = asyncio.create_task(api.post("/api/v1/recordings", json={"roomId": room_id}))
    await scripted.wait_for("start")
    assert (await backend_callback(api, SECRET, "started", {"token": room_id, "status": 1})).is_success
    recording_id = (await pending).json()["recordingId"]
    assert (await api.post(f"/api/v1/recordings/{recording_id}/stop")).status_code == 202
    gave_up = await wait_for_status(api, recording_id, {"failed"})
    assert gave_up["error"] == "upload_timeout"

    # The long call's upload comes after all (Talk's recorder names no recording): it completes that recording.
    video = mp4_bytes(tmp_path)
    late = await upload(api, SECRET, room_id, "call.mp4", video)
    assert late.status_code == 200, late.text
    stored = await wait_for_status(api, recording_id, {"complete"})
    assert "error" not in stored and "details" not in stored  # left out, not null, as in Meet

    # The same bytes again (a recorder that lost the answer): 200, nothing new. Other bytes: Talk's 400.
    assert (await upload(api, SECRET, room_id, "call.mp4", video)).status_code == 200
    other = await upload(api, SECRET, room_id, "other.mp4", mp4_bytes(tmp_path, 2.0), recording_id=recording_id)
    assert (other.status_code, other.json()["ocs"]["data"]) == (400, {"error": "recording"})
    assert await stack.store.list_keys("staging/") == []
    assert (await api.get(f"/api/v1/recordings/{recording_id}/media")).content == video
