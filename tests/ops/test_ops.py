"""`callrec ops`: the operator CLI against the real Temporal dev server and a real catalog.

Most tests drive the command's functions (parsed arguments in, text or JSON out); one runs
`python -m callrec.cli ops ...` as a subprocess to check the wiring and the exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import subprocess
import sys
import time
import uuid
from logging import ERROR
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from callrec import ops
from callrec.domain.settings import Settings
from callrec.domain.talk_room import StatusChange
from callrec.media.probe import probe_recording
from callrec.storage.catalog import Catalog, create_schema
from callrec.storage.objects import LocalObjectStore
from callrec.storage.rows import RecordingRow, RoomRow
from callrec.storage.talk_rooms import TalkRooms
from tests.conftest import SECRET, Stack, StackFactory, wait_registered
from tests.helpers import backend_callback, create_room, join, mp4_bytes, upload, wait_for_status
from tests.recording_server import ScriptedRecordingServer

NOBODY_POLLS = "callrec-test-no-worker"
OLD = 10 * 60


def now_ms() -> int:
    return int(time.time() * 1000)


def new_id(room: str | None = None) -> str:
    room = room or f"room-{uuid.uuid4().hex[:8]}"
    return f"{room}--EG_{uuid.uuid4().hex[:12]}--{uuid.uuid4().hex[:6]}"


async def add_row(
    catalog: Catalog, status: str, *, room: str | None = None, age_s: float = OLD, seq: int = 1, **extra: Any
) -> RecordingRow:
    recording_id = new_id(room)
    row = RecordingRow(
        recording_id=recording_id,
        room_id=recording_id.split("--")[0],
        room_name="Weekly",
        status=status,
        layout="grid",
        encoding="H264_720P_30",
        filename=f"{recording_id}.mp4",
        start_date=now_ms() - int(age_s * 1000),
        seq=seq,
        creation_date=now_ms() - int(age_s * 1000),
        **extra,
    )
    return await catalog.add_recording(row)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="callrec ops")
    ops.configure(parser)
    return parser.parse_args(argv)


async def run(tool: ops.Ops, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = await ops.execute(parse(*argv), tool, Settings(), out)
    return code, out.getvalue()


async def run_json(tool: ops.Ops, *argv: str) -> Any:
    code, text = await run(tool, *argv, "--json")
    assert code == 0, text
    return json.loads(text)


@pytest.fixture
def tool(temporal_env: WorkflowEnvironment, catalog: Catalog, tmp_path: Path) -> ops.Ops:
    (tmp_path / "objects").mkdir()
    return ops.Ops(catalog=catalog, store=LocalObjectStore(tmp_path / "objects"), client=temporal_env.client)


async def stuck_workflow(client: Client, recording_id: str) -> None:
    """A RecordingWorkflow that no worker will ever run: it stays running and answers no query."""
    await client.start_workflow("RecordingWorkflow", id=recording_id, task_queue=NOBODY_POLLS)


# ------------------------------------------------------------------ list


async def test_list_filters_by_status_and_room(tool: ops.Ops, catalog: Catalog) -> None:
    active = await add_row(catalog, "active", room="room-aaaa1111")
    failed = await add_row(
        catalog, "failed", room="room-aaaa1111", error="upload_timeout", error_code=508, age_s=OLD + 60
    )
    other = await add_row(catalog, "complete", room="room-bbbb2222", age_s=OLD - 60)

    code, text = await run(tool, "list")
    assert code == 0
    lines = text.splitlines()
    assert lines[0].split() == ["RECORDING", "ROOM", "STATUS", "ERROR", "STARTED"]
    assert [line.split()[0] for line in lines[1:]] == [other.recording_id, active.recording_id, failed.recording_id]
    failed_line = lines[3].split()
    assert failed_line[1:4] == ["room-aaaa1111", "failed", "upload_timeout"]
    assert failed_line[4].endswith("Z")

    listed = await run_json(tool, "list", "--room", "room-aaaa1111")
    assert [r["recordingId"] for r in listed] == [active.recording_id, failed.recording_id]
    listed = await run_json(tool, "list", "--status", "failed")
    assert [(r["recordingId"], r["error"], r["errorCode"]) for r in listed] == [
        (failed.recording_id, "upload_timeout", 508)
    ]
    assert [r["recordingId"] for r in await run_json(tool, "list", "--limit", "1")] == [other.recording_id]
    assert (await run(tool, "list", "--status", "ending"))[1].strip() == "no recordings"


# ------------------------------------------------------------------ unknown ids


@pytest.mark.parametrize("command", ["show", "abort", "retry"])
async def test_an_unknown_recording_exits_non_zero(
    tool: ops.Ops, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    recording_id = new_id()
    code, out = await run(tool, command, recording_id)
    assert code == 1 and out == ""
    assert f"unknown recording '{recording_id}'" in capsys.readouterr().err


async def test_the_command_line_wiring(temporal_env: WorkflowEnvironment, catalog_url: str, tmp_path: Path) -> None:
    catalog = Catalog.from_url(catalog_url)
    await create_schema(catalog.engine)
    row = await add_row(catalog, "complete")
    await catalog.close()
    env = os.environ | {
        "CALLREC_DATABASE_URL": catalog_url,
        "CALLREC_DATA_DIR": str(tmp_path),
        "CALLREC_TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
    }

    def cli(*argv: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "callrec.cli", "ops", *argv]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)

    unknown = await asyncio.to_thread(cli, "show", "nope--EG_x--y")
    assert unknown.returncode == 1
    assert "unknown recording 'nope--EG_x--y'" in unknown.stderr
    listed = await asyncio.to_thread(cli, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [r["recordingId"] for r in json.loads(listed.stdout)] == [row.recording_id]
    refused = await asyncio.to_thread(cli, "retry", row.recording_id)
    assert refused.returncode == 1 and refused.stdout == ""
    assert f"cannot retry '{row.recording_id}': nothing to retry: the recording is complete" in refused.stderr
    usage = await asyncio.to_thread(cli, "frobnicate")
    assert usage.returncode == 2 and "invalid choice" in usage.stderr


# ------------------------------------------------------------------ show and abort of a stuck workflow


async def test_abort_terminates_a_stuck_recording_and_marks_it_aborted(
    tool: ops.Ops, catalog: Catalog, temporal_env: WorkflowEnvironment
) -> None:
    client = temporal_env.client
    row = await add_row(catalog, "active", seq=3)
    await catalog.add_room(RoomRow(room_id=row.room_id, room_name="Weekly", config={}, creation_date=now_ms()))
    await TalkRooms(catalog).set_status(StatusChange(room_id=row.room_id, status=1))  # Talk shows it recording
    await stuck_workflow(client, row.recording_id)

    shown = await run_json(tool, "show", row.recording_id)
    assert shown["recording"]["status"] == "active"
    assert shown["workflow"]["status"] == "RUNNING"
    assert shown["workflow"]["workflowType"] == "RecordingWorkflow"
    # No worker polls its task queue: said at once, not after a query that waits 5 s for nobody.
    assert shown["current"] is None
    assert shown["currentError"] == f"not asked: no worker polls its task queue {NOBODY_POLLS!r}"
    assert shown["history"][0]["type"] == "WorkflowExecutionStarted"

    result = await run_json(tool, "abort", row.recording_id, "--reason", "recorder hung", "--wait", "1")
    assert result["actions"][0] == "sent the `end` signal"
    assert result["actions"][1] == "still running after 1 s: terminated the workflow (recorder hung)"
    assert result["actions"][2] == "row active -> aborted (operator_aborted)"
    assert result["workflowStatus"] == "TERMINATED"
    got = await catalog.get_recording(row.recording_id)
    assert got is not None
    assert (got.status, got.error, got.error_code, got.seq) == ("aborted", "operator_aborted", 410, 4)
    assert got.details == "Aborted by an operator: recorder hung"
    assert got.end_date is not None
    room = await catalog.get_room(row.room_id)
    assert room is not None and room.call_recording == 0  # no callback will come: the room can record again

    code, text = await run(tool, "show", row.recording_id)
    assert code == 0
    assert "status: aborted" in text and "status: TERMINATED" in text
    assert "WorkflowExecutionSignaled signal=end" in text
    assert "WorkflowExecutionTerminated reason=recorder hung" in text

    # Aborting again changes nothing.
    again = await run_json(tool, "abort", row.recording_id)
    assert again["actions"] == ["nothing to do: the recording is aborted, its workflow terminated"]


async def test_abort_of_a_row_whose_workflow_is_gone_repairs_it_like_reconcile(tool: ops.Ops, catalog: Catalog) -> None:
    row = await add_row(catalog, "ending", age_s=1, seq=2)  # young: reconcile would wait, an operator need not
    code, text = await run(tool, "abort", row.recording_id)
    assert code == 0
    assert "the workflow is not running (missing): repairing the row as reconcile does" in text
    assert "row ending -> failed" in text
    got = await catalog.get_recording(row.recording_id)
    assert got is not None and (got.status, got.error, got.seq) == ("failed", "workflow_lost", 3)


# ------------------------------------------------------------------ reconcile


async def test_reconcile_prints_the_report(tool: ops.Ops, catalog: Catalog, tmp_path: Path) -> None:
    lost = await add_row(catalog, "active")
    fresh = await add_row(catalog, "starting", age_s=1)
    key = f"staging/{new_id()}/x.mp4"
    path = tmp_path / "objects" / key
    path.parent.mkdir(parents=True)
    path.write_bytes(b"left over")
    then = time.time() - OLD
    os.utime(path, (then, then))

    code, text = await run(tool, "reconcile")
    assert code == 0
    assert "rows in progress checked: 2, fixed: 1, too young: 1" in text
    assert f"{lost.recording_id}: active -> failed (workflow missing)" in text
    assert f"deleted {key}" in text
    assert not path.exists()

    report = await run_json(tool, "reconcile", "--min-age", "0")
    assert [(f["recordingId"], f["workflow"]) for f in report["fixed"]] == [(fresh.recording_id, "missing")]
    assert report["deletedKeys"] == []


# ------------------------------------------------------------------ a live recording


async def test_show_and_abort_of_a_live_recording(stacks: StackFactory) -> None:
    """With the worker and the built-in recorder running, `end` stops and stores the recording: no terminate."""
    stack = await stacks.start()
    room_id = await create_room(stack.api, "Ops room")
    await join(stack.api, room_id, "Alice")
    started = await stack.api.post("/api/v1/recordings", json={"roomId": room_id})
    assert started.status_code == 201, started.text
    recording_id = started.json()["recordingId"]
    tool = ops.Ops(catalog=stack.catalog, store=stack.store, client=stack.client)

    shown = await run_json(tool, "show", recording_id, "--events", "0")  # the whole history, from its start
    assert shown["recording"]["status"] == "active"
    assert shown["workflow"]["status"] == "RUNNING"
    assert (shown["workflow"]["roomId"], shown["workflow"]["recordingStatus"]) == (room_id, "active")
    assert shown["current"]["status"] == "active"
    scheduled = {"ActivityTaskScheduled", "MarkerRecorded"}
    activities = [(item["activity"], item.get("local", False)) for item in shown["history"] if "activity" in item
                  and item["type"] in scheduled]  # fmt: skip
    # admission, then the recording itself: one long activity on the recorder's own task queue; the room's Talk
    # status (starting, once admitted) and the recording's projection are local activities
    assert activities[:4] == [
        ("assign_recorder", False),
        ("record_part", False),
        ("set_call_recording", True),
        ("project_recording", True),
    ]
    assert any(item.get("signal") == "recorder_started" for item in shown["history"])
    code, text = await run(tool, "show", recording_id, "--events", "0")
    assert code == 0 and "current state (query):" in text and "activity=record_part" in text

    await asyncio.sleep(1.5)
    result = await run_json(tool, "abort", recording_id, "--wait", "60")
    assert result["actions"][0] == "sent the `end` signal"
    assert result["actions"][1] == "the recording finished by itself as complete"
    assert len(result["actions"]) == 2
    # The workflow completed with the recording: the share-to-chat offer is the catalog's.
    assert result["workflowStatus"] == "COMPLETED"
    body = await wait_for_status(stack.api, recording_id, {"complete"})
    assert body["size"] > 0

    # Aborting a stored recording changes nothing.
    again = await run_json(tool, "abort", recording_id)
    assert again["actions"] == ["nothing to do: the recording is complete, its workflow completed"]
    assert (await wait_for_status(stack.api, recording_id, {"complete"}))["size"] == body["size"]


# ------------------------------------------------------------------ retry: choosing the reset point

HISTORIES = Path(__file__).parent.parent / "workflows" / "histories"


def saved_history(name: str, upto: int | None = None) -> ops.RunHistory:
    """A run's history kept for the replay tests, optionally cut after event `upto` (a run that stopped there)."""
    history = WorkflowHistory.from_json(name, (HISTORIES / f"{name}.json").read_text())
    return ops.RunHistory([event for event in history.events if upto is None or event.event_id <= upto])


def ended(workflow: str, status: str, error: str | None = None, started: bool = True) -> ops.RunEnding:
    """How a run closed; "completed" (or "failed" with an error) here: it ended the recording with that status."""
    ending = workflow == "completed" or (workflow == "failed" and error is not None)
    return ops.RunEnding(workflow, status, error, "why", started, ended_recording=ending)


def test_a_terminated_run_carries_on_from_its_last_workflow_task() -> None:
    # Recording (active, waiting for a stop) when it was terminated: events 1-25 of a run. The workflow task that
    # made it active (17-19, after the recorder's `started`) also wrote that to the catalog (local activities,
    # markers 22 and 24), so the new run redoes that task: from "starting", with the `started` signal re-applied.
    point = ops.choose_reset_point(saved_history("failed-recorder", upto=25), ended("terminated", "failed"))
    assert (point.event_id, point.status, point.reapply) == (19, "starting", True)
    assert point.step == "carry on from its last workflow task before it was terminated"
    assert point.before is not None
    assert (point.before["eventId"], point.before["type"]) == (16, "WorkflowExecutionSignaled")


def test_a_start_that_failed_starts_over_without_the_old_signals() -> None:
    # The timer ran out (16); the task after stop_egress (25) decided `failed`: resetting there would fail again.
    point = ops.choose_reset_point(
        saved_history("failed-start-timeout"), ended("completed", "failed", "start_timeout", started=False)
    )
    assert (point.event_id, point.status, point.reapply) == (4, "starting", False)
    assert point.step == "start over: ask the recorder to start again"
    assert point.before is not None and point.before["type"] == "WorkflowExecutionStarted"


def test_an_invalid_file_is_validated_again() -> None:
    point = ops.choose_reset_point(saved_history("failed-invalid-file"), ended("completed", "failed", "invalid_file"))
    assert (point.event_id, point.status, point.reapply) == (41, "ending", True)
    assert point.finalize is not None and point.finalize.event_id == 45


def test_a_recording_the_store_did_not_take_stores_its_kept_file_again() -> None:
    # It closed Failed with `store_unavailable` after joining the recorded parts gave up (the store was down).
    history = saved_history("failed-store-unavailable")
    point = ops.choose_reset_point(history, ended("failed", "failed", "store_unavailable"))
    assemble = history.last_scheduled("assemble")
    assert assemble is not None and point.status == "ending"
    assert point.event_id == assemble.activity_task_scheduled_event_attributes.workflow_task_completed_event_id
    assert point.step == "join the recorded parts and store the file again"


@pytest.mark.parametrize(
    ("name", "ending", "message"),
    [
        (
            "failed-recorder",
            ended("completed", "failed", "recorder_failed"),
            "the recorder gave up on it while recording",
        ),
        ("aborted-silent", ended("completed", "aborted", "recorder_silent"), "stopped reporting progress"),
        ("complete", ended("completed", "aborted", "nothing_recorded"), r"stopped before the recorder started \(why\)"),
        ("failed-start-timeout", ended("completed", "failed", "workflow_lost"), "no step of a recording that ended"),
    ],
)
def test_endings_with_nothing_to_carry_on_have_no_reset_point(name: str, ending: ops.RunEnding, message: str) -> None:
    with pytest.raises(ops.NoResetPoint, match=message):
        ops.choose_reset_point(saved_history(name), ending)


def test_a_run_that_never_completed_a_workflow_task_has_no_reset_point() -> None:
    with pytest.raises(ops.NoResetPoint, match="before it completed a single workflow task"):
        ops.choose_reset_point(saved_history("complete", upto=3), ended("terminated", "aborted"))


# ------------------------------------------------------------------ retry: refusals


async def retry_refused(tool: ops.Ops, recording_id: str, capsys: pytest.CaptureFixture[str]) -> str:
    code, out = await run(tool, "retry", recording_id)
    assert code == 1 and out == ""
    err = capsys.readouterr().err
    assert err.startswith(f"callrec ops: cannot retry '{recording_id}': "), err
    return err


async def test_retry_of_a_stored_recording_is_refused(
    tool: ops.Ops, catalog: Catalog, capsys: pytest.CaptureFixture[str]
) -> None:
    for status in ("complete", "limit_reached"):
        row = await add_row(catalog, status)
        assert f"nothing to retry: the recording is {status}" in await retry_refused(tool, row.recording_id, capsys)


async def test_retry_is_refused_while_the_room_has_another_recording_in_progress(
    tool: ops.Ops, catalog: Catalog, temporal_env: WorkflowEnvironment, capsys: pytest.CaptureFixture[str]
) -> None:
    row = await add_row(catalog, "aborted", room="room-cccc3333", error="operator_aborted", error_code=410)
    await stuck_workflow(temporal_env.client, row.recording_id)
    await temporal_env.client.get_workflow_handle(row.recording_id).terminate(reason="test")
    other = await add_row(catalog, "active", room="room-cccc3333", age_s=10)

    err = await retry_refused(tool, row.recording_id, capsys)
    assert f"room room-cccc3333 has another recording in progress ({other.recording_id}, active)" in err
    assert "the catalog allows one per room" in err
    got = await catalog.get_recording(row.recording_id)
    assert got is not None and (got.status, got.seq) == ("aborted", 1)  # untouched

    # With the room free, this run is refused for its own reason: no worker ever ran it.
    await catalog.project_recording(other.recording_id, 2, {"status": "complete"})
    err = await retry_refused(tool, row.recording_id, capsys)
    assert "before it completed a single workflow task (no worker ever ran it)" in err


async def test_retry_of_a_recording_whose_workflow_runs_is_refused(
    tool: ops.Ops, catalog: Catalog, temporal_env: WorkflowEnvironment, capsys: pytest.CaptureFixture[str]
) -> None:
    row = await add_row(catalog, "active")
    await stuck_workflow(temporal_env.client, row.recording_id)
    err = await retry_refused(tool, row.recording_id, capsys)
    assert "the recording is active and its workflow is running: nothing to retry; `callrec ops abort` stops it" in err
    gone = await add_row(catalog, "failed", error="workflow_lost", error_code=500)
    err = await retry_refused(tool, gone.recording_id, capsys)
    assert "the recording is failed and its workflow does not exist: there is nothing to reset" in err


# ------------------------------------------------------------------ retry: live recordings


async def stored_file(stack: Stack, recording_id: str, tmp_path: Path) -> float:
    """The stored recording's duration, read from the object store as a player would."""
    row = await stack.catalog.get_recording(recording_id)
    assert row is not None and row.status == "complete" and row.object_key is not None
    local = tmp_path / f"{recording_id}.mp4"
    await stack.store.download(row.object_key, local)
    assert local.stat().st_size == row.size
    return probe_recording(local, "video").duration_s


@pytest.mark.parametrize("then", ["reconciled", "left", "call ended"])
async def test_retry_of_a_recording_terminated_mid_recording(
    stacks: StackFactory, tmp_path: Path, then: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Terminated by mistake while recording: retry resets to its last workflow task; the recorder never stopped,
    so stopping the recording then stores all of it. When the call ended meanwhile, retry stops it itself."""
    stack = await stacks.start()
    room_id = await create_room(stack.api, "Retry room")
    await join(stack.api, room_id, "Alice")
    started = await stack.api.post("/api/v1/recordings", json={"roomId": room_id})
    assert started.status_code == 201, started.text
    recording_id = started.json()["recordingId"]
    tool = ops.Ops(catalog=stack.catalog, store=stack.store, client=stack.client)
    await asyncio.sleep(1.5)
    first = await stack.client.get_workflow_handle(recording_id).describe()
    await stack.client.get_workflow_handle(recording_id).terminate(reason="oops")

    if then == "reconciled":
        report = await run_json(tool, "reconcile", "--min-age", "0")
        assert [(f["recordingId"], f["status"], f["workflow"]) for f in report["fixed"]] == [
            (recording_id, "failed", "terminated")
        ]
        # What the recorder stored of it so far stays for a retry (it is `workflow_lost`).
        assert [key for key in report["deletedKeys"] if recording_id in key] == []
        # As it is, the recording cannot be stopped: the row says failed and no workflow runs.
        assert (await stack.api.post(f"/api/v1/recordings/{recording_id}/stop")).status_code == 409
    elif then == "call ended":
        # The API's `end` signal finds no workflow to stop.
        assert (await stack.api.delete(f"/api/v1/rooms/{room_id}/call")).status_code == 204

    result = await run_json(tool, "retry", recording_id, "--reason", "terminated by mistake")
    assert result["previousRun"] == {
        "runId": first.run_id,
        "workflow": "terminated",
        "status": "failed" if then == "reconciled" else "active",
        "error": "workflow_lost" if then == "reconciled" else None,
    }
    point = result["resetPoint"]
    # The last workflow task is the one that made the recording active (projection and chat message are local
    # activities inside it): the new run redoes it from just before, where the recording was still starting.
    assert (point["recordingStatus"], point["reapplied"]) == ("starting", "signals and updates")
    assert point["step"] == "carry on from its last workflow task before it was terminated"
    assert result["runId"] not in (None, first.run_id)
    described = await stack.client.get_workflow_handle(recording_id).describe()
    assert described.run_id == result["runId"]

    if then == "call ended":
        assert result["actions"][:2] == [
            "catalog row active -> starting before the reset: the recording holds its room again",
            "the room's call has ended: sent the `end` signal, so the new run stops the recorder and keeps what it "
            "recorded",
        ]
    else:
        assert result["actions"] == [
            f"catalog row {'failed' if then == 'reconciled' else 'active'} -> starting before the reset: the "
            "recording holds its room again",
            "the new run is active",  # it redid the task that made it active, and projected that itself
        ]
        assert result["current"]["status"] == "active"
        recording = result["recording"]
        assert (recording["status"], recording["error"], recording["endDate"]) == ("active", None, None)
        assert result["workflowStatus"] == "RUNNING"
        assert described.status == WorkflowExecutionStatus.RUNNING
        # Another retry finds the recording in progress with a running workflow.
        code, _ = await run(tool, "retry", recording_id)
        assert code == 1
        await asyncio.sleep(1.0)
        stopped = await stack.api.post(f"/api/v1/recordings/{recording_id}/stop")
        assert stopped.status_code == 202, stopped.text

    body = await wait_for_status(stack.api, recording_id, {"complete", "failed"})
    assert body["status"] == "complete", body
    assert await stored_file(stack, recording_id, tmp_path) > 1.0  # from the start, through the terminate
    row = await stack.catalog.get_recording(recording_id)
    assert row is not None and (row.status, row.error, row.error_code) == ("complete", None, None)
    shown = await run_json(tool, "show", recording_id, "--events", "0")
    assert shown["workflow"]["runId"] == result["runId"]
    reset = [item for item in shown["history"] if item["eventId"] == point["eventId"]]
    assert [item["type"] for item in reset] == ["WorkflowTaskFailed"]  # where the new run took over
    # The recorder's part started again by the new run reports `started` to a recording already active: its 404 is
    # expected, and an operator reading the recorder's log is not told of an error.
    errors = [r.getMessage() for r in caplog.records if r.name.startswith("callrec.recorder") and r.levelno >= ERROR]
    assert errors == []


async def test_retry_starts_over_once_the_recorder_is_back(
    stacks: StackFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = await stacks.start()
    await stacks.stop_recorder(stack)  # gone, yet still in the pool (its registration is not stale yet)
    room_id = await create_room(stack.api, "Recorder down")
    await join(stack.api, room_id, "Alice")
    response = await stack.api.post("/api/v1/recordings", json={"roomId": room_id})
    assert response.status_code == 503, response.text  # it never picked the start up
    [row] = await stack.catalog.recordings(room_id=room_id)
    assert (row.status, row.error) == ("failed", "egress_unavailable")
    recording_id = row.recording_id
    tool = ops.Ops(catalog=stack.catalog, store=stack.store, client=stack.client)

    # The call has ended: starting over would record nothing.
    assert (await stack.api.delete(f"/api/v1/rooms/{room_id}/call")).status_code == 204
    err = await retry_refused(tool, recording_id, capsys)
    assert f"the call in room {room_id} has ended: there is nothing to record any more" in err

    await join(stack.api, room_id, "Alice")
    http = httpx.AsyncClient(timeout=30)
    stacks.closers.append(http)  # closed once the recorder has shut down
    await stacks.serve_recorder(stack.settings, http)
    await wait_registered(stack.api, stack.settings.recorder_id)

    code, text = await run(tool, "retry", recording_id, "--wait", "30")
    assert code == 0, text
    lines = text.splitlines()
    assert lines[0] == f"recording {recording_id}:"
    assert lines[1].endswith(": failed, recording failed (egress_unavailable)")
    assert lines[2].startswith("  reset to event 4 (WorkflowTaskCompleted; the recording was starting there): ")
    assert lines[2].endswith("start over: ask the recorder to start again")
    assert lines[3].startswith("    the event before it: 1 ") and lines[3].endswith(" WorkflowExecutionStarted")
    assert lines[4] == "    signals and updates that came after it are not applied again"
    assert lines[5].startswith("  new run ")
    assert "  the new run is active" in lines
    assert lines[-2:] == ["  catalog: active", "  workflow: RUNNING"]

    await asyncio.sleep(1.5)
    stopped = await stack.api.post(f"/api/v1/recordings/{recording_id}/stop")
    assert stopped.status_code == 202, stopped.text
    body = await wait_for_status(stack.api, recording_id, {"complete", "failed"})
    assert body["status"] == "complete", body
    assert await stored_file(stack, recording_id, tmp_path) > 1.0


async def test_retry_asks_a_recording_server_to_start_again(
    stacks: StackFactory, scripted: ScriptedRecordingServer
) -> None:
    # A recording server's start runs as a local activity: the reset point is the task that ran it, not one that
    # scheduled an activity.
    stack = await stacks.start(recorder=False, egress="talk", talk_recording_server=f"http://127.0.0.1:{scripted.port}")
    room_id = await create_room(stack.api)
    await join(stack.api, room_id, "Alice")
    scripted.start_status = 503
    refused = await stack.api.post("/api/v1/recordings", json={"roomId": room_id})
    assert refused.status_code == 503, refused.text
    [row] = await stack.catalog.recordings(room_id=room_id)
    assert (row.status, row.error) == ("failed", "egress_unavailable")
    assert scripted.count("start") == 3  # the start's three attempts
    tool = ops.Ops(catalog=stack.catalog, store=stack.store, client=stack.client)

    scripted.start_status = 200
    result = await run_json(tool, "retry", row.recording_id, "--wait", "0.5")  # it waits for a `started` it gets below
    point = result["resetPoint"]
    assert (point["step"], point["recordingStatus"]) == ("start over: ask the recorder to start again", "starting")
    assert point["before"]["type"] == "WorkflowExecutionStarted"
    await scripted.wait_for_count("start", 4)
    assert scripted.count("start") == 4  # asked once more
    assert (await backend_callback(stack.api, SECRET, "started", {"token": room_id, "status": 1})).status_code == 200
    await wait_for_status(stack.api, row.recording_id, {"active"})


async def test_retry_after_an_upload_timeout_waits_for_the_upload_again(
    stacks: StackFactory, scripted: ScriptedRecordingServer, tmp_path: Path
) -> None:
    stack = await stacks.start(
        recorder=False,
        egress="talk",
        talk_recording_server=f"http://127.0.0.1:{scripted.port}",
        upload_timeout_s=3,
        late_upload_window_s=0,
    )
    room_id = await create_room(stack.api)
    await join(stack.api, room_id, "Alice")
    pending = asyncio.create_task(stack.api.post("/api/v1/recordings", json={"roomId": room_id}))
    await scripted.wait_for("start")
    assert (await backend_callback(stack.api, SECRET, "started", {"token": room_id, "status": 1})).status_code == 200
    started = await pending
    assert started.status_code == 201
    recording_id = started.json()["recordingId"]
    assert (await stack.api.post(f"/api/v1/recordings/{recording_id}/stop")).status_code == 202
    failed = await wait_for_status(stack.api, recording_id, {"failed"})
    assert failed["error"] == "upload_timeout"
    tool = ops.Ops(catalog=stack.catalog, store=stack.store, client=stack.client)

    result = await run_json(tool, "retry", recording_id)
    assert (result["previousRun"]["workflow"], result["previousRun"]["error"]) == ("failed", "upload_timeout")
    point = result["resetPoint"]
    assert (point["step"], point["recordingStatus"]) == ("wait for the recorder's upload again", "ending")
    assert point["before"]["type"] == "ActivityTaskCompleted" and point["before"]["activity"] == "stop_egress"
    assert result["recording"]["status"] == "ending" and result["recording"]["error"] is None

    stored = await upload(stack.api, SECRET, room_id, "call.mp4", mp4_bytes(tmp_path), recording_id=recording_id)
    assert stored.status_code == 200, stored.text
    body = await wait_for_status(stack.api, recording_id, {"complete", "failed"})
    assert body["status"] == "complete", body
    assert await stored_file(stack, recording_id, tmp_path) > 0.5
