"""`callrec ops list | show | abort | reconcile`: what an operator needs, from a shell.

Readable text by default, `--json` for machines. An unknown recording id exits with status 1 and a
message on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.service import RPCError, RPCStatusCode

from callrec.activities.reconcile import ReconcileActivities, ReconcileInput, ReconcileReport
from callrec.domain.recording import ROOM_ID_ATTR, STATUS_ATTR, RecordingState, StopRequest
from callrec.domain.settings import Settings
from callrec.storage.catalog import IN_PROGRESS, Catalog, RecordingRow
from callrec.storage.objects import ObjectStore
from callrec.storage.stores import make_store
from callrec.temporal import connect
from callrec.workflows.recording import RecordingWorkflow

OPERATOR_ABORTED = "operator_aborted"
OPERATOR_ABORTED_CODE = 410  # like the other `aborted` recordings: nothing usable is kept
QUERY_TIMEOUT = timedelta(seconds=5)
# Workflow-task bookkeeping says nothing an operator acts on.
_QUIET_EVENTS = {
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
}


class UnknownRecording(Exception):
    def __init__(self, recording_id: str) -> None:
        super().__init__(recording_id)
        self.recording_id = recording_id

    def __str__(self) -> str:
        return f"unknown recording {self.recording_id!r}: no catalog row and no workflow"


# ------------------------------------------------------------------ helpers


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _iso_dt(moment: datetime | None) -> str | None:
    return None if moment is None else iso(int(moment.timestamp() * 1000))


def row_dict(row: RecordingRow) -> dict[str, Any]:
    return {
        "recordingId": row.recording_id,
        "roomId": row.room_id,
        "roomName": row.room_name,
        "status": row.status,
        "error": row.error,
        "errorCode": row.error_code,
        "details": row.details,
        "creationDate": row.creation_date,
        "startDate": row.start_date,
        "endDate": row.end_date,
        "duration": row.duration,
        "size": row.size,
        "objectKey": row.object_key,
        "owner": row.owner,
        "seq": row.seq,
    }


def workflow_dict(description: WorkflowExecutionDescription) -> dict[str, Any]:
    attributes = description.typed_search_attributes
    return {
        "status": description.status.name if description.status is not None else None,
        "workflowType": description.workflow_type,
        "runId": description.run_id,
        "taskQueue": description.task_queue,
        "startTime": _iso_dt(description.start_time),
        "closeTime": _iso_dt(description.close_time),
        "historyLength": description.history_length,
        "roomId": attributes.get(ROOM_ID_ATTR),
        "recordingStatus": attributes.get(STATUS_ATTR),
    }


def _event_name(event_type: int) -> str:
    name = EventType.Name(event_type).removeprefix("EVENT_TYPE_")  # type: ignore[arg-type]
    return "".join(part.capitalize() for part in name.split("_"))


def _failure_message(attributes: Any) -> str | None:
    for field in ("failure", "last_failure"):
        if field in attributes.DESCRIPTOR.fields_by_name and attributes.HasField(field):
            failure = getattr(attributes, field)
            message: str = failure.message
            cause: str = failure.cause.message if failure.HasField("cause") else ""
            return message + (f" ({cause})" if cause and cause != message else "")
    return None


def summarize_event(event: HistoryEvent, activities: dict[int, str]) -> dict[str, Any] | None:
    """One line of history for people: type, time, and the activity, signal, update or failure it is about."""
    if event.event_type in _QUIET_EVENTS:
        return None
    which = event.WhichOneof("attributes")
    attributes: Any = getattr(event, which) if which else None
    item: dict[str, Any] = {
        "eventId": event.event_id,
        "time": _iso_dt(event.event_time.ToDatetime(UTC)),
        "type": _event_name(event.event_type),
    }
    if attributes is None:
        return item
    if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        activities[event.event_id] = attributes.activity_type.name
        item["activity"] = attributes.activity_type.name
    elif "scheduled_event_id" in attributes.DESCRIPTOR.fields_by_name and event.event_type != (
        EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
    ):
        if (name := activities.get(attributes.scheduled_event_id)) is not None:
            item["activity"] = name
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            item["attempt"] = attributes.attempt
    if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
        item["signal"] = attributes.signal_name
    elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
        item["update"] = attributes.accepted_request.input.name
    elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
        item["reason"] = attributes.reason
    elif event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
        item["timer"] = f"{attributes.start_to_fire_timeout.ToTimedelta().total_seconds():g} s"
    elif event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
        fields = attributes.search_attributes.indexed_fields
        item["searchAttributes"] = {name: _payload_text(fields[name].data) for name in fields}
    if (failure := _failure_message(attributes)) is not None:
        item["failure"] = failure
    return item


def _payload_text(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data.decode("utf-8", "replace")


# ------------------------------------------------------------------ operations


@dataclass
class Ops:
    catalog: Catalog
    store: ObjectStore
    client: Client

    @classmethod
    @asynccontextmanager
    async def connect(cls, settings: Settings) -> AsyncIterator[Ops]:
        client = await connect(settings)
        catalog = Catalog.from_url(settings.catalog_url)
        try:
            yield cls(catalog=catalog, store=await make_store(settings), client=client)
        finally:
            await catalog.close()

    def _handle(self, recording_id: str) -> WorkflowHandle[Any, RecordingState]:
        return self.client.get_workflow_handle_for(RecordingWorkflow.run, recording_id)

    async def _describe(self, recording_id: str) -> WorkflowExecutionDescription | None:
        try:
            return await self._handle(recording_id).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return None
            raise

    async def _current(self, recording_id: str) -> tuple[RecordingState | None, str | None]:
        """The running workflow's state, or why it could not be asked (e.g. no worker is polling)."""
        try:
            state = await self._handle(recording_id).query(RecordingWorkflow.current, rpc_timeout=QUERY_TIMEOUT)
        except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError) as err:
            return None, f"query failed: {err}"
        return state, None

    async def list_recordings(
        self, *, status: str | None = None, room: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        rows = await self.catalog.recordings(room_id=room, status=status, limit=limit)
        return [row_dict(row) for row in rows]

    async def show(self, recording_id: str) -> dict[str, Any]:
        row = await self.catalog.get_recording(recording_id)
        description = await self._describe(recording_id)
        if row is None and description is None:
            raise UnknownRecording(recording_id)
        shown: dict[str, Any] = {
            "recordingId": recording_id,
            "recording": row_dict(row) if row is not None else None,
            "workflow": workflow_dict(description) if description is not None else None,
            "current": None,
            "history": [],
        }
        if description is None:
            return shown
        if description.status == WorkflowExecutionStatus.RUNNING:
            state, error = await self._current(recording_id)
            shown["current"] = state.model_dump(mode="json") if state is not None else None
            if error is not None:
                shown["currentError"] = error
        activities: dict[int, str] = {}
        async for event in self._handle(recording_id).fetch_history_events():
            if (item := summarize_event(event, activities)) is not None:
                shown["history"].append(item)
        return shown

    async def abort(self, recording_id: str, *, reason: str, wait_s: float) -> dict[str, Any]:
        """Stops a stuck recording: the `end` signal first, then terminate and mark the row `aborted`."""
        row = await self.catalog.get_recording(recording_id)
        description = await self._describe(recording_id)
        if row is None and description is None:
            raise UnknownRecording(recording_id)
        actions: list[str] = []
        result: dict[str, Any] = {"recordingId": recording_id, "actions": actions}

        if description is not None and description.status == WorkflowExecutionStatus.RUNNING:
            state, _ = await self._current(recording_id)
            in_progress = state.status.in_progress if state is not None else (row is None or row.status in IN_PROGRESS)
            if not in_progress:
                status = state.status.value if state is not None else row.status if row is not None else "?"
                actions.append(
                    f"nothing to stop: the recording is {status}; its workflow is only waiting "
                    "for the share-to-chat offer to be taken or to expire"
                )
            else:
                await self._stop(recording_id, row, state, reason=reason, wait_s=wait_s, actions=actions)
        elif row is not None and row.status in IN_PROGRESS:
            what = description.status.name.lower() if description and description.status else "missing"
            actions.append(f"the workflow is not running ({what}): repairing the row as reconcile does")
            report = ReconcileReport()
            reconciler = ReconcileActivities(self.catalog, self.store, self.client)
            fix = await reconciler.reconcile_row(row, report, now_ms=int(time.time() * 1000), min_age_ms=0)
            actions.append(f"row {fix.previous_status} -> {fix.status}" if fix else "the row changed meanwhile")
        else:
            what = description.status.name.lower() if description and description.status else "missing"
            actions.append(f"nothing to do: the recording is {row.status if row else 'not in the catalog'}, "
                           f"its workflow {what}")  # fmt: skip

        after = await self.catalog.get_recording(recording_id)
        final = await self._describe(recording_id)
        result["recording"] = row_dict(after) if after is not None else None
        result["workflowStatus"] = final.status.name if final is not None and final.status is not None else None
        return result

    async def _stop(
        self,
        recording_id: str,
        row: RecordingRow | None,
        state: RecordingState | None,
        *,
        reason: str,
        wait_s: float,
        actions: list[str],
    ) -> None:
        handle = self._handle(recording_id)
        await handle.signal(RecordingWorkflow.end, StopRequest(reason="requested"))
        actions.append("sent the `end` signal")
        deadline = time.monotonic() + wait_s
        seq = state.seq if state is not None else 0
        while True:
            description = await handle.describe()
            if description.status != WorkflowExecutionStatus.RUNNING:
                status = description.status.name.lower() if description.status else "?"
                actions.append(f"the workflow closed by itself ({status})")
                return
            now_state, _ = await self._current(recording_id) if state is not None else (None, None)
            if now_state is not None:
                seq = max(seq, now_state.seq)
                if not now_state.status.in_progress:
                    actions.append(f"the recording finished by itself as {now_state.status.value}")
                    return
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(min(0.5, max(0.0, deadline - time.monotonic())))

        await handle.terminate(reason=reason)
        actions.append(f"still running after {wait_s:g} s: terminated the workflow ({reason})")
        current = await self.catalog.get_recording(recording_id)
        if current is None:
            actions.append("no catalog row to mark")
            return
        if current.status not in IN_PROGRESS:
            actions.append(f"the row is {current.status} already; left as it is")
            return
        fields: dict[str, object] = {
            "status": "aborted",
            "error": OPERATOR_ABORTED,
            "error_code": OPERATOR_ABORTED_CODE,
            "details": f"Aborted by an operator: {reason}",
            "end_date": current.end_date or int(time.time() * 1000),
        }
        # Above the workflow's own numbers too, so a projection still in flight cannot undo this.
        if await self.catalog.project_recording(recording_id, max(current.seq, seq) + 1, fields):
            actions.append(f"row {current.status} -> aborted ({OPERATOR_ABORTED})")
        else:
            actions.append("the row changed meanwhile; left as it is")

    async def reconcile(self, *, min_age_s: float) -> ReconcileReport:
        reconciler = ReconcileActivities(self.catalog, self.store, self.client)
        return await reconciler.run(ReconcileInput(min_age_s=min_age_s))


# ------------------------------------------------------------------ text output


def format_list(recordings: list[dict[str, Any]]) -> str:
    if not recordings:
        return "no recordings"
    header = ("RECORDING", "ROOM", "STATUS", "ERROR", "STARTED")
    rows = [
        (r["recordingId"], r["roomId"], r["status"], r["error"] or "-", iso(r["startDate"]) or "-") for r in recordings
    ]
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join([*(cell.ljust(width) for cell, width in zip(line[:-1], widths, strict=True)), line[-1]])
        for line in [header, *rows]
    )


_DATES = {"creationDate", "startDate", "endDate", "start_date", "end_date"}


def _fields(values: dict[str, Any], indent: str = "  ") -> list[str]:
    lines = []
    for key, value in values.items():
        if isinstance(value, dict):
            lines += [f"{indent}{key}:", *_fields(value, indent + "  ")]
        elif value is not None:
            lines.append(f"{indent}{key}: {iso(value) if key in _DATES else value}")
    return lines


def format_show(shown: dict[str, Any]) -> str:
    lines = [f"recording {shown['recordingId']}"]
    lines += ["catalog:", *(_fields(shown["recording"]) if shown["recording"] else ["  (no row)"])]
    lines += ["workflow:", *(_fields(shown["workflow"]) if shown["workflow"] else ["  (no workflow)"])]
    if shown["current"] is not None:
        lines += ["current state (query):", *_fields(shown["current"])]
    elif "currentError" in shown:
        lines.append(f"current state: {shown['currentError']}")
    if shown["history"]:
        lines.append("history:")
        for item in shown["history"]:
            extra = ", ".join(f"{k}={v}" for k, v in item.items() if k not in ("eventId", "time", "type"))
            lines.append(f"  {item['eventId']:>4} {item['time']} {item['type']}" + (f" {extra}" if extra else ""))
    return "\n".join(lines)


def format_abort(result: dict[str, Any]) -> str:
    lines = [f"recording {result['recordingId']}:", *(f"  {action}" for action in result["actions"])]
    row = result["recording"]
    if row is not None:
        lines.append(f"  catalog: {row['status']}" + (f" ({row['error']})" if row["error"] else ""))
    lines.append(f"  workflow: {result['workflowStatus'] or 'none'}")
    return "\n".join(lines)


# ------------------------------------------------------------------ command line


def configure(parser: argparse.ArgumentParser) -> None:
    """Adds the `ops` subcommands to `parser` (cli.py's `ops` parser, or a test's own)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON instead of text")
    sub = parser.add_subparsers(dest="ops_command", required=True)
    listing = sub.add_parser("list", parents=[common], help="recordings from the catalog, newest first")
    listing.add_argument("--status", choices=["starting", "active", "ending", "complete", "failed", "aborted",
                                              "limit_reached"])  # fmt: skip
    listing.add_argument("--room", help="room id")
    listing.add_argument("--limit", type=int, default=50)
    show = sub.add_parser("show", parents=[common], help="catalog row, workflow status, current state and history")
    show.add_argument("recording_id")
    abort = sub.add_parser("abort", parents=[common], help="stop a stuck recording (end signal, then terminate)")
    abort.add_argument("recording_id")
    abort.add_argument("--reason", default="aborted by an operator")
    abort.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the workflow to end itself")
    reconcile = sub.add_parser("reconcile", parents=[common], help="repair catalog rows and staging objects now")
    reconcile.add_argument("--min-age", type=float, default=None, help="seconds; default CALLREC_RECONCILE_MIN_AGE_S")


async def execute(args: argparse.Namespace, ops: Ops, settings: Settings, out: TextIO = sys.stdout) -> int:
    """Runs one parsed `ops` command; returns the exit status."""
    result: Any
    try:
        if args.ops_command == "list":
            result = await ops.list_recordings(status=args.status, room=args.room, limit=args.limit)
            text = format_list(result)
        elif args.ops_command == "show":
            result = await ops.show(args.recording_id)
            text = format_show(result)
        elif args.ops_command == "abort":
            result = await ops.abort(args.recording_id, reason=args.reason, wait_s=args.wait)
            text = format_abort(result)
        else:
            min_age = args.min_age if args.min_age is not None else settings.reconcile_min_age_s
            report = await ops.reconcile(min_age_s=min_age)
            result, text = report.model_dump(mode="json", by_alias=True), report.summary()
    except UnknownRecording as err:
        print(f"callrec ops: {err}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2) if args.json else text, file=out)
    return 0


async def run(args: argparse.Namespace, settings: Settings, out: TextIO = sys.stdout) -> int:
    async with Ops.connect(settings) as ops:
        return await execute(args, ops, settings, out)


def main(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(run(args, settings))
