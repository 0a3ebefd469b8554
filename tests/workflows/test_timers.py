"""Timer branches of RecordingWorkflow on the time-skipping test server: minutes and hours pass in milliseconds.

Activities are the real ones: SQLite catalog, local object store, a real MP4, and a recording server on
loopback that the test scripts.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bench.common import free_port
from callrec.activities.egress import EgressActivities
from callrec.domain.layout import AdvancedEncoding, Layout, render_spec
from callrec.domain.participants import Participant
from callrec.domain.recording import (
    SEARCH_ATTRIBUTES,
    FileStored,
    RecorderFailed,
    RecorderProgress,
    RecorderStarted,
    RecordingState,
    StartRecordingInput,
    StopRequest,
)
from callrec.media.render import render_file
from callrec.storage.catalog import Catalog, create_schema
from callrec.storage.objects import LocalObjectStore
from callrec.storage.rows import RecordingRow
from callrec.temporal import bundled_binary
from callrec.worker.main import recording_activities
from callrec.workflows.recording import RecordingWorkflow
from tests.conftest import SECRET
from tests.helpers import SMALL, outcome, stored_keys
from tests.recording_server import ScriptedRecordingServer

HOUR = 3600.0


@pytest.fixture(scope="module")
async def skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=bundled_binary("temporal-test-server"), data_converter=pydantic_data_converter
    )
    async with env:
        # The test server starts without callrec's search attributes; the dev server gets them at start.
        await env.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=env.client.namespace,
                search_attributes={key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for key in SEARCH_ATTRIBUTES},
            )
        )
        yield env


@dataclass
class Harness:
    client: Client
    env: WorkflowEnvironment
    catalog: Catalog
    store: LocalObjectStore
    recorder: ScriptedRecordingServer
    task_queue: str
    tmp_path: Path
    handles: list[WorkflowHandle[RecordingWorkflow, RecordingState]] = field(default_factory=list)

    async def start(self, **timeouts: float) -> WorkflowHandle[RecordingWorkflow, RecordingState]:
        room_id = "room-1"
        recording_id = f"{room_id}--EG_{uuid.uuid4().hex[:12]}--abcde"
        await self.catalog.add_recording(
            RecordingRow(
                recording_id=recording_id,
                room_id=room_id,
                room_name="Room",
                status="starting",
                layout="grid",
                encoding=SMALL,
                filename=f"{recording_id}.mp4",
                creation_date=0,
            )
        )
        values = {"start_timeout_s": 20.0, "upload_timeout_s": 300.0, "max_duration_s": HOUR} | timeouts
        handle = await self.client.start_workflow(
            RecordingWorkflow.run,
            StartRecordingInput(
                recording_id=recording_id,
                room_id=room_id,
                room_name="Room",
                layout=Layout.GRID,
                encoding=AdvancedEncoding.model_validate(SMALL),
                participants=[Participant(name="Alice")],
                **values,
            ),
            id=recording_id,
            task_queue=self.task_queue,
        )
        self.handles.append(handle)
        return handle

    async def save_histories(self, directory: Path) -> None:
        """Keeps the closed workflows' histories for the replay tests (CALLREC_SAVE_HISTORIES=dir), as the stacks do."""
        directory.mkdir(parents=True, exist_ok=True)
        for handle in self.handles:
            if (await handle.describe()).close_time is not None:
                history = await handle.fetch_history()
                (directory / f"{handle.id}.json").write_text(history.to_json())

    async def upload(self, handle: WorkflowHandle[RecordingWorkflow, RecordingState]) -> FileStored:
        """What a recorder's upload of a 2 s call stages, for `store_file`."""
        video = self.tmp_path / "call.mp4"
        spec = render_spec(AdvancedEncoding.model_validate(SMALL))
        await asyncio.to_thread(render_file, video, Layout.GRID, [("alice", "Alice")], spec, 2.0)
        staged = await self.store.put_file(f"staging/{handle.id}/upload.mp4", video)
        return FileStored(staging_key=f"staging/{handle.id}/upload.mp4", size=staged.size, sha256=staged.sha256)

    async def status_becomes(self, handle: WorkflowHandle[RecordingWorkflow, RecordingState], status: str) -> None:
        for _ in range(200):
            state = await handle.query(RecordingWorkflow.current)
            row = await self.catalog.get_recording(handle.id)
            if state.status == status and row is not None and row.status == status:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{handle.id} never became {status}")


@pytest.fixture
async def harness(
    skipping_env: WorkflowEnvironment, scripted: ScriptedRecordingServer, tmp_path: Path
) -> AsyncIterator[Harness]:
    catalog = Catalog.from_url(f"sqlite+aiosqlite:///{tmp_path / 'catalog.db'}")
    await create_schema(catalog.engine)
    store = LocalObjectStore(tmp_path / "objects")
    task_queue = f"timers-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient() as http:
        egress = EgressActivities(f"http://127.0.0.1:{scripted.port}", "http://127.0.0.1:9", SECRET, http)
        worker = Worker(
            skipping_env.client,
            task_queue=task_queue,
            workflows=[RecordingWorkflow],
            activities=recording_activities(catalog, store, egress),
        )
        async with worker:
            harness = Harness(skipping_env.client, skipping_env, catalog, store, scripted, task_queue, tmp_path)
            yield harness
            if target := os.environ.get("CALLREC_SAVE_HISTORIES"):
                await harness.save_histories(Path(target))
    await catalog.close()


async def test_start_timeout_fails_the_recording_and_stops_egress(harness: Harness) -> None:
    handle = await harness.start()
    state = await outcome(handle)  # 20 s pass in no time

    assert (state.status, state.error) == ("failed", "start_timeout")
    assert state.details == "The recorder did not report 'started' within 20 s."
    row = await harness.catalog.get_recording(handle.id)
    assert row is not None and (row.status, row.error_code) == ("failed", 504)
    assert [r["type"] for r in harness.recorder.requests] == ["start", "stop"]


async def test_a_recorder_that_cannot_be_reached_fails_the_recording(harness: Harness) -> None:
    nowhere = replace(harness, task_queue=f"timers-{uuid.uuid4().hex[:8]}")  # its own worker, egress to a dead port
    async with httpx.AsyncClient() as http:
        egress = EgressActivities(f"http://127.0.0.1:{free_port()}", "http://127.0.0.1:9", SECRET, http)
        activities = recording_activities(harness.catalog, harness.store, egress)
        async with Worker(
            harness.client, task_queue=nowhere.task_queue, workflows=[RecordingWorkflow], activities=activities
        ):
            handle = await nowhere.start()
            state = await outcome(handle)  # three attempts, then it gives up

    assert (state.status, state.error, state.error_code) == ("failed", "egress_unavailable", 503)
    assert state.details is not None and state.details.startswith("The recorder could not be started: recording server")
    row = await harness.catalog.get_recording(handle.id)
    assert row is not None and (row.status, row.error) == ("failed", "egress_unavailable")
    assert [n.subject for n in await harness.catalog.notifications(room_id="room-1")] == ["recording_failed"]


async def test_max_duration_ends_as_limit_reached_with_the_file_stored(harness: Harness) -> None:
    handle = await harness.start()
    await harness.recorder.wait_for("start")
    await handle.signal(RecordingWorkflow.recorder_started, RecorderStarted())
    await harness.status_becomes(handle, "active")

    await harness.env.sleep(HOUR + 1)
    await harness.status_becomes(handle, "ending")
    await harness.recorder.wait_for("stop")

    upload = await harness.upload(handle)
    assert await handle.execute_update(RecordingWorkflow.store_file, upload) == upload
    state = await outcome(handle)  # it closes once stored: the share offer is the catalog's

    assert state.status == "limit_reached"
    assert state.file is not None and state.file.sha256 == upload.sha256
    row = await harness.catalog.get_recording(handle.id)
    assert row is not None and row.status == "limit_reached" and row.size == upload.size
    assert row.duration is not None and 1.8 <= row.duration <= 2.3
    assert await harness.store.list_keys("recordings/") == stored_keys("room-1", handle.id)
    # The chat's messages follow the room's Talk status, which the recorder's callbacks move through the API (here the
    # test signals the workflow itself): the workflow posts none of its own. The owner's offer to share it is open in
    # the catalog, while the workflow has completed.
    assert [m.message for m in await harness.catalog.chat_messages("room-1")] == []
    [offer] = await harness.catalog.notifications(room_id="room-1")
    assert (offer.subject, offer.recording_id, offer.state) == ("record_file_stored", handle.id, "open")
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED


async def test_missing_upload_after_stop_fails_the_recording(harness: Harness) -> None:
    handle = await harness.start()
    await harness.recorder.wait_for("start")
    await handle.signal(RecordingWorkflow.recorder_started, RecorderStarted())
    await harness.status_becomes(handle, "active")
    stopping = await handle.execute_update(RecordingWorkflow.stop, StopRequest())
    assert stopping.status == "ending"

    state = await outcome(handle)  # the 300 s upload timeout passes in no time

    assert (state.status, state.error, state.error_code) == ("failed", "upload_timeout", 508)
    row = await harness.catalog.get_recording(handle.id)
    assert row is not None and row.status == "failed"
    assert row.details == "The recorder did not upload the file within 300 s."


async def test_call_ending_before_the_recorder_started_aborts(harness: Harness) -> None:
    handle = await harness.start()
    await harness.recorder.wait_for("start")
    await handle.signal(RecordingWorkflow.end, StopRequest(reason="call_ended"))

    state = await outcome(handle)

    assert (state.status, state.error) == ("aborted", "nothing_recorded")
    assert [r["type"] for r in harness.recorder.requests] == ["start", "stop"]


async def test_recorder_that_falls_silent_is_aborted_and_stopped(harness: Harness) -> None:
    handle = await harness.start(recorder_silence_timeout_s=60.0)
    await harness.recorder.wait_for("start")
    await handle.signal(RecordingWorkflow.recorder_started, RecorderStarted())
    await harness.status_becomes(handle, "active")
    for _ in range(3):  # progress keeps it going past several silence periods
        await handle.signal(RecordingWorkflow.recorder_progress, RecorderProgress(duration_s=1, bytes=1))
        await harness.env.sleep(50)
    assert (await handle.query(RecordingWorkflow.current)).status == "active"

    state = await outcome(handle)  # then nothing for 60 s

    assert (state.status, state.error, state.error_code) == ("aborted", "recorder_silent", 408)
    assert state.details is not None and "60 s" in state.details
    assert [r["type"] for r in harness.recorder.requests] == ["start", "stop"]


async def test_a_late_upload_after_the_upload_timeout_still_completes_the_recording(harness: Harness) -> None:
    handle = await harness.start(late_upload_window_s=24 * HOUR)
    await harness.recorder.wait_for("start")
    await handle.signal(RecordingWorkflow.recorder_started, RecorderStarted())
    await harness.status_becomes(handle, "active")
    await handle.execute_update(RecordingWorkflow.stop, StopRequest())

    await harness.env.sleep(301)  # the upload timeout passes: failed, and the owner is told
    await harness.status_becomes(handle, "failed")
    row = await harness.catalog.get_recording(handle.id)
    assert row is not None and row.error == "upload_timeout"
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING  # it still takes the file

    await harness.env.sleep(5 * HOUR)  # a long call's upload, hours late
    late = await harness.upload(handle)
    assert await handle.execute_update(RecordingWorkflow.store_file, late) == late
    state = await outcome(handle)

    assert (state.status, state.error, state.details) == ("complete", None, None)
    row = await harness.catalog.get_recording(handle.id)
    assert row is not None and (row.status, row.error, row.sha256) == ("complete", None, late.sha256)
    assert await harness.store.list_keys("recordings/") == stored_keys("room-1", handle.id)


async def test_the_late_upload_window_closes(harness: Harness) -> None:
    handle = await harness.start(late_upload_window_s=HOUR)
    await harness.recorder.wait_for("start")
    await handle.signal(RecordingWorkflow.recorder_started, RecorderStarted())
    await harness.status_becomes(handle, "active")
    await handle.execute_update(RecordingWorkflow.stop, StopRequest())

    state = await outcome(handle)  # upload timeout, then the late window, pass in no time

    assert (state.status, state.error) == ("failed", "upload_timeout")
    assert (await handle.describe()).status == WorkflowExecutionStatus.FAILED


async def test_a_recorder_that_fails_before_it_started_is_stopped_all_the_same(harness: Harness) -> None:
    handle = await harness.start()
    await harness.recorder.wait_for("start")
    await handle.signal(RecordingWorkflow.recorder_failed, RecorderFailed(reason="No camera"))

    state = await outcome(handle)

    assert (state.status, state.error, state.details) == ("failed", "recorder_failed", "No camera")
    assert [r["type"] for r in harness.recorder.requests] == ["start", "stop"]  # no orphan left recording


async def test_a_start_the_api_gave_up_on_never_reaches_the_recorder(harness: Harness) -> None:
    idle = replace(harness, task_queue=f"timers-{uuid.uuid4().hex[:8]}")  # no worker polls it yet
    handle = await idle.start()
    await handle.signal(RecordingWorkflow.end, StopRequest(reason="no_worker"))
    async with httpx.AsyncClient() as http:
        egress = EgressActivities(f"http://127.0.0.1:{harness.recorder.port}", "http://127.0.0.1:9", SECRET, http)
        activities = recording_activities(harness.catalog, harness.store, egress)
        async with Worker(
            harness.client, task_queue=idle.task_queue, workflows=[RecordingWorkflow], activities=activities
        ):
            state = await outcome(handle)

    assert (state.status, state.error) == ("aborted", "nothing_recorded")
    assert state.details is not None and state.details.startswith("No worker took the start in time")
    assert harness.recorder.requests == []


async def test_a_stop_asked_twice_in_one_workflow_task_reaches_the_recorder_twice(harness: Harness) -> None:
    own = replace(harness, task_queue=f"timers-{uuid.uuid4().hex[:8]}")
    async with httpx.AsyncClient() as http:
        egress = EgressActivities(f"http://127.0.0.1:{harness.recorder.port}", "http://127.0.0.1:9", SECRET, http)
        activities = recording_activities(harness.catalog, harness.store, egress)

        def worker() -> Worker:  # no cache: the next worker takes the workflow's next task at once
            return Worker(
                harness.client,
                task_queue=own.task_queue,
                workflows=[RecordingWorkflow],
                activities=activities,
                max_cached_workflows=0,
            )

        async with worker():
            handle = await own.start()
            await harness.recorder.wait_for("start")
            await handle.signal(RecordingWorkflow.recorder_started, RecorderStarted())
            await own.status_becomes(handle, "active")
        stop = StopRequest(reason="requested", actor="alice")
        await handle.signal(RecordingWorkflow.end, stop)  # no worker runs: both wait for the same workflow task
        await handle.signal(RecordingWorkflow.end, stop)
        async with worker():
            await harness.recorder.wait_for_count("stop", 2)  # Talk's recording servers get each stop
            upload = await harness.upload(handle)
            assert await handle.execute_update(RecordingWorkflow.store_file, upload) == upload
            state = await outcome(handle)

    assert state.status == "complete"
    assert [r["type"] for r in harness.recorder.requests] == ["start", "stop", "stop"]
