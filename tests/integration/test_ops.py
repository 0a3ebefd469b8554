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
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from callrec import ops
from callrec.domain.settings import Settings
from callrec.storage.catalog import Catalog, RecordingRow, create_schema
from callrec.storage.objects import LocalObjectStore
from tests.conftest import StackFactory
from tests.helpers import create_room, join, wait_for_status

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


@pytest.mark.parametrize("command", ["show", "abort"])
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
    usage = await asyncio.to_thread(cli, "frobnicate")
    assert usage.returncode == 2 and "invalid choice" in usage.stderr


# ------------------------------------------------------------------ show and abort of a stuck workflow


async def test_abort_terminates_a_stuck_recording_and_marks_it_aborted(
    tool: ops.Ops, catalog: Catalog, temporal_env: WorkflowEnvironment
) -> None:
    client = temporal_env.client
    row = await add_row(catalog, "active", seq=3)
    await stuck_workflow(client, row.recording_id)

    shown = await run_json(tool, "show", row.recording_id)
    assert shown["recording"]["status"] == "active"
    assert shown["workflow"]["status"] == "RUNNING"
    assert shown["workflow"]["workflowType"] == "RecordingWorkflow"
    assert shown["current"] is None and "query failed" in shown["currentError"]  # no worker to answer
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

    shown = await run_json(tool, "show", recording_id)
    assert shown["recording"]["status"] == "active"
    assert shown["workflow"]["status"] == "RUNNING"
    assert (shown["workflow"]["roomId"], shown["workflow"]["recordingStatus"]) == (room_id, "active")
    assert shown["current"]["status"] == "active"
    activities = [item.get("activity") for item in shown["history"] if item["type"] == "ActivityTaskScheduled"]
    assert activities[:2] == ["start_egress", "project_recording"]
    assert any(item.get("signal") == "recorder_started" for item in shown["history"])
    code, text = await run(tool, "show", recording_id)
    assert code == 0 and "current state (query):" in text and "activity=start_egress" in text

    await asyncio.sleep(1.5)
    result = await run_json(tool, "abort", recording_id, "--wait", "60")
    assert result["actions"][0] == "sent the `end` signal"
    assert result["actions"][1] == "the recording finished by itself as complete"
    assert len(result["actions"]) == 2
    # The workflow stays open for the share-to-chat offer; the recording is stored.
    assert result["workflowStatus"] == "RUNNING"
    body = await wait_for_status(stack.api, recording_id, {"complete"})
    assert body["size"] > 0

    # Aborting a stored recording does not terminate its workflow.
    again = await run_json(tool, "abort", recording_id)
    assert "nothing to stop: the recording is complete" in again["actions"][0]
    description = await stack.client.get_workflow_handle(recording_id).describe()
    assert description.status == WorkflowExecutionStatus.RUNNING
