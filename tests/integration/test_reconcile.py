"""Reconciliation against the real Temporal dev server, a real catalog (SQLite, and PostgreSQL when configured)
and a local object store.

Workflows that are lost are real ones: started on a task queue no worker polls (so nothing ever runs them) and
then terminated or timed out; workflows that complete or fail are tiny test-only workflow types run by a worker.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import (
    Client,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleOverlapPolicy,
    WorkflowExecutionStatus,
)
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from callrec.activities.reconcile import ReconcileActivities, ReconcileInput, ReconcileReport
from callrec.domain.pool import AssignRequest, RecorderReport
from callrec.domain.recording import FinalizeResult, RecordingState, RecordingStatus
from callrec.domain.talk_room import StatusChange
from callrec.storage.catalog import Catalog
from callrec.storage.objects import LocalObjectStore
from callrec.storage.pool import RecorderPool
from callrec.storage.rows import RecordingRow, RoomRow
from callrec.storage.talk_rooms import TalkRooms
from callrec.workflows.reconcile import SCHEDULE_ID, ReconcileWorkflow, ensure_schedule

NOBODY_POLLS = "callrec-test-no-worker"
OLD = 10 * 60  # seconds: well past the grace period
MIN_AGE = 120.0


# ------------------------------------------------------------------ test-only workflow types


@workflow.defn(name="ReconcileTestFinishes")
class Finishes:
    @workflow.run
    async def run(self, state: RecordingState) -> RecordingState:
        return state


@workflow.defn(name="ReconcileTestFails")
class Fails:
    @workflow.run
    async def run(self) -> None:
        raise ApplicationError("the egress exploded", non_retryable=True)


@workflow.defn(name="ReconcileTestWaits")
class Waits:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


# ------------------------------------------------------------------ helpers


def now_ms() -> int:
    return int(time.time() * 1000)


def new_id() -> str:
    room = f"room-{uuid.uuid4().hex[:8]}"
    return f"{room}--EG_{uuid.uuid4().hex[:12]}--{uuid.uuid4().hex[:6]}"


async def add_row(catalog: Catalog, status: str, *, age_s: float = OLD, seq: int = 1) -> RecordingRow:
    recording_id = new_id()
    row = RecordingRow(
        recording_id=recording_id,
        room_id=recording_id.split("--")[0],
        room_name="Weekly",
        status=status,
        layout="grid",
        encoding="H264_720P_30",
        filename=f"{recording_id}.mp4",
        start_date=None if status == "starting" else now_ms() - int(age_s * 1000),
        seq=seq,
        creation_date=now_ms() - int(age_s * 1000),
    )
    return await catalog.add_recording(row)


async def get_row(catalog: Catalog, recording_id: str) -> RecordingRow:
    row = await catalog.get_recording(recording_id)
    assert row is not None
    return row


async def wait_closed(client: Client, workflow_id: str, timeout: float = 30) -> WorkflowExecutionStatus:
    deadline = time.monotonic() + timeout
    while True:
        status = (await client.get_workflow_handle(workflow_id).describe()).status
        if status != WorkflowExecutionStatus.RUNNING:
            assert status is not None
            return status
        assert time.monotonic() < deadline, f"{workflow_id} still running"
        await asyncio.sleep(0.2)


async def stuck_workflow(client: Client, recording_id: str, **options: object) -> None:
    """A RecordingWorkflow that no worker will ever run."""
    await client.start_workflow("RecordingWorkflow", id=recording_id, task_queue=NOBODY_POLLS, **options)  # type: ignore[call-overload]


def make_old(store_root: Path, key: str, age_s: float = OLD) -> None:
    then = time.time() - age_s
    os.utime(store_root / key, (then, then))


async def put(store: LocalObjectStore, key: str) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"not really a recording"

    await store.put_stream(key, body())


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    (tmp_path / "objects").mkdir()
    return LocalObjectStore(tmp_path / "objects")


@pytest.fixture
async def helpers(temporal_env: WorkflowEnvironment) -> AsyncIterator[str]:
    """A worker for the test-only workflow types; yields its task queue."""
    task_queue = f"reconcile-helpers-{uuid.uuid4().hex[:8]}"
    worker = Worker(
        temporal_env.client,
        task_queue=task_queue,
        workflows=[Finishes, Fails, Waits],
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    async with worker:
        yield task_queue


# ------------------------------------------------------------------ the activity's logic


async def test_reconcile_repairs_rows_and_staging_objects_once(
    temporal_env: WorkflowEnvironment,
    catalog: Catalog,
    store: LocalObjectStore,
    tmp_path: Path,
    helpers: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = temporal_env.client
    root = tmp_path / "objects"

    # active, but its workflow was terminated
    terminated = await add_row(catalog, "active", seq=3)
    await stuck_workflow(client, terminated.recording_id)
    await client.get_workflow_handle(terminated.recording_id).terminate(reason="operator gave up")

    # ending, but its workflow completed with a final state the catalog never got
    completed = await add_row(catalog, "ending", seq=4)
    final = RecordingState(
        recording_id=completed.recording_id,
        seq=5,
        status=RecordingStatus.COMPLETE,
        start_date=1_700_000_000_000,
        end_date=1_700_000_060_000,
        file=FinalizeResult(
            object_key=f"recordings/{completed.room_id}/{completed.recording_id}.mp4",
            filename=f"{completed.recording_id}.mp4",
            size=12345,
            sha256="ab" * 32,
            duration=60.0,
            width=1280,
            height=720,
            video_codec="h264",
            audio_codec="aac",
        ),
    )
    await client.execute_workflow(Finishes.run, final, id=completed.recording_id, task_queue=helpers)

    # starting, and there never was a workflow
    missing = await add_row(catalog, "starting", seq=1)
    # in progress without a workflow, but young: a start may be under way
    fresh = await add_row(catalog, "starting", age_s=5, seq=1)
    # active with a running workflow: consistent
    running = await add_row(catalog, "active", seq=2)
    await stuck_workflow(client, running.recording_id)
    # finished long ago
    finished = await add_row(catalog, "complete", seq=7)

    orphan_no_row = f"staging/{new_id()}/0a.mp4"
    orphan_finished = f"staging/{finished.recording_id}/0b.mp4"
    kept_lost = f"staging/{missing.recording_id}/0c.mp4"  # its row becomes workflow_lost: kept for a retry
    young_orphan = f"staging/{new_id()}/0d.mp4"
    in_progress = f"staging/{running.recording_id}/0e.mp4"
    stored = f"recordings/{finished.room_id}/{finished.recording_id}.mp4"  # not staging: never touched
    for key in (orphan_no_row, orphan_finished, kept_lost, young_orphan, in_progress, stored):
        await put(store, key)
        if key != young_orphan:
            make_old(root, key)

    beats: list[tuple[object, ...]] = []
    reconciler = ReconcileActivities(catalog, store, client)
    with caplog.at_level(logging.INFO, logger="callrec.activities.reconcile"):
        report = await reconciler.run(ReconcileInput(min_age_s=MIN_AGE), heartbeat=lambda *d: beats.append(d))
    # The run's tally is one log line, after a line for each change.
    *changes, tally = [r.getMessage() for r in caplog.records if r.name == "callrec.activities.reconcile"]
    assert tally == (
        "reconcile changed things: rows in progress checked: 5, fixed: 3, too young: 1; "
        "staging objects checked: 5, deleted: 2, too young: 1"
    )
    assert len(changes) == 5 and all("\n" not in change for change in changes)

    fixes = {fix.recording_id: fix for fix in report.fixed}
    assert set(fixes) == {terminated.recording_id, completed.recording_id, missing.recording_id}
    assert report.rows_checked == 5  # terminated, completed, missing, fresh, running
    assert report.rows_too_young == [fresh.recording_id]
    assert sorted(report.deleted_keys) == sorted([orphan_no_row, orphan_finished])
    assert report.keys_too_young == [young_orphan]
    assert report.keys_checked == 5
    assert beats, "no heartbeats"

    row = await get_row(catalog, terminated.recording_id)
    assert (row.status, row.error, row.error_code, row.seq) == ("failed", "workflow_lost", 500, 4)
    assert row.details == "The recording's workflow was terminated. (reason: operator gave up)"
    assert row.end_date is not None
    assert fixes[terminated.recording_id].workflow == "terminated"
    assert fixes[terminated.recording_id].previous_status == "active"

    row = await get_row(catalog, completed.recording_id)
    assert (row.status, row.error, row.seq) == ("complete", None, 6)  # above both the row's 4 and the state's 5
    assert (row.start_date, row.end_date, row.size, row.duration) == (1_700_000_000_000, 1_700_000_060_000, 12345, 60)
    assert final.file is not None and row.object_key == final.file.object_key
    assert row.media == {"width": 1280, "height": 720, "videoCodec": "h264", "audioCodec": "aac", "gaps": []}
    assert fixes[completed.recording_id].workflow == "completed"

    row = await get_row(catalog, missing.recording_id)
    assert (row.status, row.error, row.error_code, row.seq) == ("failed", "workflow_lost", 500, 2)
    assert row.details == "The recording's workflow does not exist."
    assert fixes[missing.recording_id].workflow == "missing"

    assert (await get_row(catalog, fresh.recording_id)).status == "starting"
    assert (await get_row(catalog, running.recording_id)).status == "active"
    assert (await get_row(catalog, finished.recording_id)).seq == 7
    assert await store.list_keys("") == sorted([kept_lost, young_orphan, in_progress, stored])

    again = await reconciler.run(ReconcileInput(min_age_s=MIN_AGE))
    assert (again.fixed, again.deleted_keys) == ([], [])
    assert again.rows_too_young == [fresh.recording_id]
    assert again.rows_checked == 2  # fresh and running are still in progress

    await client.get_workflow_handle(running.recording_id).terminate(reason="test over")


@pytest.mark.parametrize("ending", ["failed", "timed_out", "canceled"])
async def test_a_workflow_that_failed_timed_out_or_was_cancelled_fails_the_row(
    temporal_env: WorkflowEnvironment, catalog: Catalog, store: LocalObjectStore, helpers: str, ending: str
) -> None:
    client = temporal_env.client
    row = await add_row(catalog, "active", seq=2)
    if ending == "failed":
        await client.start_workflow(Fails.run, id=row.recording_id, task_queue=helpers)
    elif ending == "timed_out":
        await stuck_workflow(client, row.recording_id, execution_timeout=timedelta(seconds=1))
    else:
        handle = await client.start_workflow(Waits.run, id=row.recording_id, task_queue=helpers)
        await handle.cancel()
    assert (await wait_closed(client, row.recording_id)).name.lower() == ending

    report = await ReconcileActivities(catalog, store, client).run(ReconcileInput(min_age_s=MIN_AGE))

    assert [(fix.recording_id, fix.status, fix.workflow) for fix in report.fixed] == [
        (row.recording_id, "failed", ending)
    ]
    got = await get_row(catalog, row.recording_id)
    assert (got.status, got.error, got.error_code, got.seq) == ("failed", "workflow_lost", 500, 3)
    expected = {
        "failed": "The recording's workflow failed. (the egress exploded)",
        "timed_out": "The recording's workflow timed out.",
        "canceled": "The recording's workflow was cancelled.",
    }
    assert got.details == expected[ending]


async def test_a_newer_projection_is_not_overwritten(
    temporal_env: WorkflowEnvironment, catalog: Catalog, store: LocalObjectStore
) -> None:
    """A row that moved on between reading and writing keeps its newer state."""
    row = await add_row(catalog, "active", seq=2)
    await catalog.project_recording(row.recording_id, 9, {"status": "complete"})
    report = ReconcileReport()
    fix = await ReconcileActivities(catalog, store, temporal_env.client).reconcile_row(
        row, report, now_ms=now_ms(), min_age_ms=0
    )
    assert fix is None and report.fixed == []
    got = await get_row(catalog, row.recording_id)
    assert (got.status, got.seq) == ("complete", 9)


# ------------------------------------------------------------------ the workflow and its schedule


async def test_reconcile_workflow_and_its_schedule(
    temporal_env: WorkflowEnvironment, catalog: Catalog, store: LocalObjectStore
) -> None:
    client = temporal_env.client
    task_queue = f"reconcile-{uuid.uuid4().hex[:8]}"
    lost = await add_row(catalog, "ending", seq=5)
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[ReconcileWorkflow],  # in the sandbox, as the real worker runs it
        activities=[ReconcileActivities(catalog, store, client).reconcile],
    )
    async with worker:
        report = await client.execute_workflow(
            ReconcileWorkflow.run,
            ReconcileInput(min_age_s=MIN_AGE),
            id=f"reconcile-test-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
        )
        assert isinstance(report, ReconcileReport)
        assert [(fix.recording_id, fix.status) for fix in report.fixed] == [(lost.recording_id, "failed")]
        assert (await get_row(catalog, lost.recording_id)).status == "failed"

        try:
            assert await ensure_schedule(client, task_queue, 3600, min_age_s=30) is True
            assert await ensure_schedule(client, task_queue, 60) is False  # exists: left as it is
            handle = client.get_schedule_handle(SCHEDULE_ID)
            description = await handle.describe()
            schedule = description.schedule
            assert schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
            assert [spec.every for spec in schedule.spec.intervals] == [timedelta(hours=1)]
            action = schedule.action
            assert isinstance(action, ScheduleActionStartWorkflow)
            assert (action.workflow, action.task_queue) == ("ReconcileWorkflow", task_queue)

            # Run it now: the scheduled workflow reaches the worker and reports that nothing is left to do.
            await handle.trigger()
            deadline = time.monotonic() + 30
            while not (description := await handle.describe()).info.recent_actions:
                assert time.monotonic() < deadline, "the schedule did not start the workflow"
                await asyncio.sleep(0.2)
            started = description.info.recent_actions[-1].action
            assert isinstance(started, ScheduleActionExecutionStartWorkflow)
            run = client.get_workflow_handle(started.workflow_id, result_type=ReconcileReport)
            scheduled_report = await run.result()
            assert (scheduled_report.fixed, scheduled_report.deleted_keys) == ([], [])
        finally:
            await client.get_schedule_handle(SCHEDULE_ID).delete()


async def test_recorder_slots_of_recordings_that_are_over_are_released_once(
    catalog: Catalog, store: LocalObjectStore, temporal_env: WorkflowEnvironment
) -> None:
    pool = RecorderPool(catalog)
    report = RecorderReport(id="rec-1", url="http://rec-1:8090", taskQueue="callrec-recorder-rec-1", capacity=3)
    await pool.register(report, now_ms())
    complete, active = await add_row(catalog, "complete"), await add_row(catalog, "active")
    slots = {}
    for name, row_id in [("complete", complete.recording_id), ("active", active.recording_id), ("gone", new_id())]:
        request = AssignRequest(recording_id=row_id, room_id=row_id.split("--")[0], cost=1.0)
        assert await pool.assign(request, now_ms() - OLD * 1000) is not None
        slots[name] = row_id
    young = new_id()
    assert await pool.assign(AssignRequest(recording_id=young, room_id="young", cost=0.5), now_ms()) is None  # full

    activities = ReconcileActivities(catalog, store, temporal_env.client)
    await stuck_workflow(temporal_env.client, active.recording_id)
    first = await activities.run(ReconcileInput(min_age_s=MIN_AGE))
    assert sorted(first.released_slots) == sorted([slots["complete"], slots["gone"]])
    assert "recorder slots released: 2" in first.counts()
    [view] = await pool.recorders(now_ms())
    assert view.slots == 1 and view.load == 1.0  # the active recording keeps its place
    assert await pool.assign(AssignRequest(recording_id=young, room_id="young", cost=0.5), now_ms()) is not None
    second = await activities.run(ReconcileInput(min_age_s=MIN_AGE))
    assert second.released_slots == []
    await temporal_env.client.get_workflow_handle(active.recording_id).terminate()


async def test_a_lost_recording_leaves_its_room_failed_for_talk(
    temporal_env: WorkflowEnvironment, catalog: Catalog, store: LocalObjectStore
) -> None:
    """No callback will move the room's Talk status of a recording whose workflow is gone: reconcile sets 5 (failed,
    with Talk's message), so a Talk client can start again."""
    client = temporal_env.client
    row = await add_row(catalog, "active", seq=2)
    await catalog.add_room(RoomRow(room_id=row.room_id, room_name="Weekly", config={}, creation_date=now_ms()))
    await TalkRooms(catalog).set_status(StatusChange(room_id=row.room_id, status=1))
    await stuck_workflow(client, row.recording_id)
    await client.get_workflow_handle(row.recording_id).terminate(reason="gone")

    await ReconcileActivities(catalog, store, client).run(ReconcileInput(min_age_s=MIN_AGE))

    room = await catalog.get_room(row.room_id)
    assert room is not None and room.call_recording == 5
    assert [m.message for m in await catalog.chat_messages(row.room_id)] == ["recording_started", "recording_failed"]
