"""`callrec ops` as an operator runs it: the real `callrec` entry point, from any directory.

It finds the stack `callrec dev` recorded (never a stray `.callrec/` in the working directory), says an
expected problem (Temporal down, no catalog, an unknown id, bad arguments) in one line without a traceback,
filters with `--since`, and `show` leads with the error, the workflow's link in the Temporal UI and its last
events.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from bench.common import free_port
from callrec import ops
from callrec.storage.catalog import Catalog, create_schema
from callrec.storage.dev_stack import write_stack
from callrec.storage.objects import LocalObjectStore
from tests.ops.test_ops import NOBODY_POLLS, add_row, run, run_json

CALLREC = Path(sys.executable).parent / "callrec"  # the console script `make dev` installs


def callrec(*argv: str, cwd: Path, state: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    """`callrec ...` in `cwd` with no CALLREC_* in its environment but `settings`, its state home `state`."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("CALLREC_")}
    env |= {"XDG_STATE_HOME": str(state)} | {f"CALLREC_{name.upper()}": value for name, value in settings.items()}
    return subprocess.run([str(CALLREC), *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.fixture
async def stack_dir(tmp_path: Path) -> Path:
    """A data dir with a migrated SQLite catalog, as `callrec dev` leaves it."""
    data = tmp_path / "stack" / ".callrec"
    catalog = Catalog.from_url(f"sqlite+aiosqlite:///{data / 'catalog.db'}")
    await create_schema(catalog.engine)
    await catalog.close()
    return data


async def add_to(data: Path, status: str, **extra: object) -> str:
    catalog = Catalog.from_url(f"sqlite+aiosqlite:///{data / 'catalog.db'}")
    try:
        return (await add_row(catalog, status, **extra)).recording_id
    finally:
        await catalog.close()


# ------------------------------------------------------------------ where the stack is


async def test_ops_from_another_directory_reads_the_dev_stack_and_creates_nothing_there(
    temporal_env: WorkflowEnvironment, stack_dir: Path, tmp_path: Path
) -> None:
    recording_id = await add_to(stack_dir, "complete")
    address = temporal_env.client.service_client.config.target_host
    state, elsewhere = tmp_path / "state", tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.environ["XDG_STATE_HOME"], before = str(state), os.environ["XDG_STATE_HOME"]
    try:  # as `callrec dev` records it once up
        write_stack({"data_dir": str(stack_dir), "temporal_address": address, "temporal_namespace": "default"})
    finally:
        os.environ["XDG_STATE_HOME"] = before

    listed = await asyncio.to_thread(callrec, "ops", "list", cwd=elsewhere, state=state)
    assert listed.returncode == 0, listed.stderr
    assert recording_id in listed.stdout
    consent = await asyncio.to_thread(callrec, "consent", "list", cwd=elsewhere, state=state)
    assert consent.returncode == 0 and consent.stdout == "no consents\n", consent.stderr
    assert list(elsewhere.iterdir()) == []  # no stray .callrec/

    # A .env (here in a parent directory) that says where a stack is wins over the recorded one.
    other = tmp_path / "elsewhere" / "other-data"
    (tmp_path / ".env").write_text(f"CALLREC_DATA_DIR={other}\nCALLREC_TEMPORAL_ADDRESS={address}\n")
    refused = await asyncio.to_thread(callrec, "ops", "list", cwd=elsewhere, state=state)
    assert refused.returncode == 2
    assert one_line(refused).startswith(f"callrec ops: no catalog at {other / 'catalog.db'}: set CALLREC_DATA_DIR")
    assert not other.exists()


async def test_without_a_stack_ops_and_consent_refuse_in_one_line_instead_of_creating_a_catalog(
    tmp_path: Path,
) -> None:
    for argv in (("ops", "list"), ("ops", "show", "r--EG_x--y"), ("consent", "list")):
        done = await asyncio.to_thread(callrec, *argv, cwd=tmp_path, state=tmp_path / "no-state")
        assert done.returncode == 2, done.stderr
        line = one_line(done)
        assert line.startswith(f"callrec {argv[0]}: no catalog at {tmp_path / '.callrec' / 'catalog.db'}")
        assert "callrec dev" in line and str(tmp_path / "no-state" / "callrec" / "dev-stack.json") in line
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ expected errors: one line, no traceback


async def test_expected_errors_are_one_line_without_a_traceback(
    temporal_env: WorkflowEnvironment, stack_dir: Path, tmp_path: Path
) -> None:
    await add_to(stack_dir, "failed", error="upload_timeout", error_code=508)
    address = temporal_env.client.service_client.config.target_host
    here = {"cwd": tmp_path, "state": tmp_path / "state", "data_dir": str(stack_dir)}

    bogus = f"127.0.0.1:{free_port()}"  # nothing listens there
    down = await asyncio.to_thread(callrec, "ops", "show", "r--EG_x--y", temporal_address=bogus, **here)
    assert down.returncode == 1 and down.stdout == ""
    line = one_line(down)
    assert line.startswith(f"callrec ops: Temporal at {bogus} is not available") and "CALLREC_TEMPORAL_ADDRESS" in line

    unknown = await asyncio.to_thread(callrec, "ops", "show", "nope--EG_x--y", temporal_address=address, **here)
    assert unknown.returncode == 1
    assert one_line(unknown) == "callrec ops: unknown recording 'nope--EG_x--y': no catalog row and no workflow"

    since = await asyncio.to_thread(callrec, "ops", "list", "--since", "yesterday", temporal_address=address, **here)
    assert since.returncode == 2 and "Traceback" not in since.stderr
    assert "argument --since: 'yesterday' is neither a duration (30m, 24h, 7d) nor an ISO time" in since.stderr

    no_schema = tmp_path / "empty.db"
    no_schema.touch()
    missing = await asyncio.to_thread(
        callrec, "ops", "list", temporal_address=address, database_url=f"sqlite+aiosqlite:///{no_schema}", **here
    )
    assert missing.returncode == 1
    assert "no such table" in one_line(missing) and "run `callrec migrate`" in missing.stderr


# ------------------------------------------------------------------ --since


def test_since_takes_durations_and_iso_times() -> None:
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    ms = int(now.timestamp() * 1000)
    assert ops.since_ms("30m", now) == ms - 30 * 60_000
    assert ops.since_ms("24h", now) == ms - 24 * 3_600_000
    assert ops.since_ms("7d", now) == ms - 7 * 86_400_000
    assert ops.since_ms("2026-12-07T11:00:00Z", now) == ms - 3_600_000
    assert ops.since_ms("2026-12-07T12:00:00+01:00", now) == ms - 3_600_000
    assert ops.since_ms("2026-12-07T11:00", now) == ms - 3_600_000  # no zone: UTC


def test_counts_and_seconds_out_of_range_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    from callrec.ops import consent

    parser = argparse.ArgumentParser(prog="callrec ops")
    ops.configure(parser)
    consents = argparse.ArgumentParser(prog="callrec consent")
    consent.configure(consents)
    for command, argv, message in (
        (parser, ["list", "--limit", "-3"], "argument --limit: '-3' is not a whole number from 1"),
        (parser, ["list", "--limit", "0"], "argument --limit: '0' is not a whole number from 1"),
        (parser, ["abort", "r--EG_x--y", "--wait", "-1"], "argument --wait: '-1' is not a number of seconds"),
        (parser, ["retry", "r--EG_x--y", "--wait", "nan"], "argument --wait: 'nan' is not a number of seconds"),
        (parser, ["reconcile", "--min-age", "inf"], "argument --min-age: 'inf' is not a number of seconds"),
        (consents, ["list", "--limit", "-1"], "argument --limit: '-1' is not a whole number from 1"),
    ):
        with pytest.raises(SystemExit) as exited:
            command.parse_args(argv)
        assert exited.value.code == 2
        assert message in capsys.readouterr().err
    assert parser.parse_args(["list", "--limit", "7"]).limit == 7
    assert parser.parse_args(["abort", "r--EG_x--y", "--wait", "0"]).wait == 0.0


@pytest.fixture
def tool(temporal_env: WorkflowEnvironment, catalog: Catalog, tmp_path: Path) -> ops.Ops:
    (tmp_path / "objects").mkdir()
    return ops.Ops(catalog=catalog, store=LocalObjectStore(tmp_path / "objects"), client=temporal_env.client)


async def test_list_since_leaves_out_older_recordings(tool: ops.Ops, catalog: Catalog) -> None:
    room = f"room-{uuid.uuid4().hex[:8]}"
    recent = await add_row(catalog, "failed", room=room, age_s=3600, error="start_timeout", error_code=504)
    await add_row(catalog, "failed", room=room, age_s=3 * 86400, error="start_timeout", error_code=504)
    listed = await run_json(tool, "list", "--room", room, "--status", "failed", "--since", "24h")
    assert [r["recordingId"] for r in listed] == [recent.recording_id]
    assert len(await run_json(tool, "list", "--room", room, "--since", "7d")) == 2


# ------------------------------------------------------------------ show


async def test_show_leads_with_the_error_and_the_workflow_link_and_ends_with_the_last_events(
    tool: ops.Ops, catalog: Catalog, temporal_env: WorkflowEnvironment
) -> None:
    row = await add_row(
        catalog, "failed", error="upload_timeout", error_code=508, details="The recorder did not upload within 300 s"
    )
    handle = await temporal_env.client.start_workflow("RecordingWorkflow", id=row.recording_id, task_queue=NOBODY_POLLS)
    for n in range(20):  # nobody runs it: each signal is one more event in its history
        await handle.signal(f"note-{n:02}")

    code, text = await run(tool, "show", row.recording_id, "--events", "5")
    assert code == 0
    lines = text.splitlines()
    assert lines[0] == f"recording {row.recording_id}"
    assert lines[1] == "error: upload_timeout (508): The recorder did not upload within 300 s"
    assert lines[2] == (
        f"Temporal UI: http://127.0.0.1:8233/namespaces/default/workflows/{row.recording_id}/"
        f"{handle.result_run_id}/history"
    )
    header = "history (the last 5 of 21 events without workflow-task bookkeeping; --events 0: all):"
    shown = [line.split()[2:] for line in lines[lines.index(header) + 1 :]]
    assert shown == [["WorkflowExecutionSignaled", f"signal=note-{n}"] for n in range(15, 20)]

    full = await run_json(tool, "show", row.recording_id, "--events", "0")
    assert full["error"] == {
        "error": "upload_timeout",
        "errorCode": 508,
        "details": "The recorder did not upload within 300 s",
    }
    assert full["workflowUrl"].endswith(f"/workflows/{row.recording_id}/{handle.result_run_id}/history")
    assert full["historyEvents"] == 21 and len(full["history"]) == 21
    assert full["history"][0]["type"] == "WorkflowExecutionStarted"
    assert len((await run_json(tool, "show", row.recording_id))["history"]) == ops.cli.SHOWN_EVENTS


async def test_show_of_a_recording_without_a_workflow_has_no_link(tool: ops.Ops, catalog: Catalog) -> None:
    row = await add_row(catalog, "complete")
    code, text = await run(tool, "show", row.recording_id)
    assert code == 0
    assert "Temporal UI:" not in text and "error:" not in text
    assert "(no workflow)" in text
