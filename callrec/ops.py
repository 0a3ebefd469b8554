"""`callrec ops list | show | abort | reconcile | retry`: what an operator needs, from a shell.

Readable text by default, `--json` for machines. An unknown recording id, or a retry that is refused,
exits with status 1 and a message on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from sqlalchemy.exc import IntegrityError
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, ResetReapplyExcludeType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.service import RPCError, RPCStatusCode

from callrec.activities.catalog import projection_fields
from callrec.activities.files import final_key
from callrec.activities.reconcile import ReconcileActivities, ReconcileInput, ReconcileReport
from callrec.domain.recording import (
    ROOM_ID_ATTR,
    STATUS_ATTR,
    ErrorCode,
    FinalizeInput,
    RecordingState,
    RecordingStatus,
    StopRequest,
)
from callrec.domain.settings import Settings
from callrec.storage.catalog import IN_PROGRESS, Catalog, RecordingRow
from callrec.storage.objects import ObjectNotFound, ObjectStore
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


def _marker(attributes: Any) -> dict[str, Any]:
    """A local activity (the catalog writes run as local activities) or a patch, by name."""
    details = attributes.details
    try:
        if attributes.marker_name == "core_local_activity" and "data" in details:
            data = json.loads(details["data"].payloads[0].data)
            return {"activity": data["activity_type"], "local": True, "attempt": data["attempt"]}
        if attributes.marker_name == "core_patch" and "patch-data" in details:
            return {"patch": json.loads(details["patch-data"].payloads[0].data)["id"]}
    except (IndexError, KeyError, ValueError):  # a marker of another shape: shown by its type alone
        pass
    return {}


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
    if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
        item |= _marker(attributes)
    elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
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


# ------------------------------------------------------------------ retry: where to reset a run


class RetryRefused(Exception):
    def __init__(self, recording_id: str, reason: str) -> None:
        super().__init__(f"cannot retry {recording_id!r}: {reason}")


class NoResetPoint(Exception):
    """The run's history has no point from which a new run could carry on usefully (the message says why)."""


RETRY_REASON = "retried by an operator"
_CLOSED_ABNORMALLY = {
    WorkflowExecutionStatus.TERMINATED: "terminated",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.TIMED_OUT: "timed out",
    WorkflowExecutionStatus.CANCELED: "cancelled",
}
_DONE = (RecordingStatus.COMPLETE.value, RecordingStatus.LIMIT_REACHED.value)
# Errors after which the recorder must be asked to start again: the old egress never recorded anything.
_START_OVER = {ErrorCode.EGRESS_UNAVAILABLE.name.lower(), ErrorCode.START_TIMEOUT.name.lower()}
_NOT_RETRYABLE = {
    ErrorCode.RECORDER_FAILED.name.lower(): "the recorder gave up on it while recording ({details}): what it had "
    "recorded never reached callrec, and a new run cannot get it back. Start a new recording.",
    ErrorCode.RECORDER_SILENT.name.lower(): "the recorder stopped reporting progress and was stopped; nothing it "
    "recorded was kept. Start a new recording.",
    ErrorCode.NOTHING_RECORDED.name.lower(): "it was stopped before the recorder started ({details}): there is "
    "nothing to carry on. Start a new recording if the call goes on.",
}


@dataclass(frozen=True)
class RunEnding:
    """How the run to be reset ended."""

    workflow: str  # completed, terminated, failed, timed out, cancelled
    status: str  # the recording's: the completed run's result, else the catalog row's
    error: str | None
    details: str | None
    started: bool  # the recorder had reported `started`


@dataclass(frozen=True)
class ResetPoint:
    event_id: int  # a WorkflowTaskCompleted event of the run: the new run redoes that task with the current code
    step: str  # what the new run does from there
    status: str  # the recording's status there (the last RecordingStatus the run set before it)
    before: dict[str, Any] | None  # the last event before it, as `show` prints it
    reapply: bool = True  # signals and updates that came after the point are delivered to the new run again
    finalize: HistoryEvent | None = None  # the ActivityTaskScheduled of the `finalize` to redo


class RunHistory:
    """The events of one run, with what choosing a reset point needs."""

    def __init__(self, events: Sequence[HistoryEvent]) -> None:
        self.events = list(events)
        self.by_id = {event.event_id: event for event in self.events}
        activities: dict[int, str] = {}
        self.summaries = [item for event in self.events if (item := summarize_event(event, activities)) is not None]
        self.activities = activities  # ActivityTaskScheduled event id -> activity name

    def workflow_tasks(self) -> list[int]:
        return [e.event_id for e in self.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED]

    def last_scheduled(self, activity: str) -> HistoryEvent | None:
        found = [self.by_id[event_id] for event_id, name in self.activities.items() if name == activity]
        return max(found, key=lambda event: event.event_id, default=None)

    def last_of(self, event_type: int) -> HistoryEvent | None:
        return next((e for e in reversed(self.events) if e.event_type == event_type), None)

    def status_before(self, event_id: int) -> str:
        status = RecordingStatus.STARTING.value
        for event in self.events:
            if event.event_id >= event_id:
                break
            if event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
                fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
                if STATUS_ATTR.name in fields:
                    status = str(_payload_text(fields[STATUS_ATTR.name].data))
        return status

    def point(
        self, event_id: int, step: str, *, reapply: bool = True, finalize: HistoryEvent | None = None
    ) -> ResetPoint:
        before = [item for item in self.summaries if item["eventId"] < event_id]
        return ResetPoint(
            event_id=event_id,
            step=step,
            status=self.status_before(event_id),
            before=before[-1] if before else None,
            reapply=reapply,
            finalize=finalize,
        )


def choose_reset_point(history: RunHistory, ending: RunEnding) -> ResetPoint:
    """Where a new run can carry on usefully from (docs/operations.md, "Retrying a recording").

    A reset point is a WorkflowTaskCompleted event: the new run gets the history before it, then redoes
    that workflow task and everything after it with the current code. So the point must come BEFORE the
    decision that ended the recording, at the last step that went well:

    - run terminated / failed / timed out / cancelled while in progress: its last workflow task (Temporal's
      "LastWorkflowTask"): the new run carries on where it was stopped;
    - ended `egress_unavailable`, `start_timeout`, or `recorder_failed` before the recorder started: the task
      that scheduled the last `start_egress` (start over), without the signals and updates that came after
      it (they were the failed egress's);
    - ended `upload_timeout`: the task that started the timer that ran out: the wait for the upload starts
      over (the recorder was already asked to stop);
    - ended `invalid_file`: the task that scheduled the last `finalize`: the file is validated again;
    - anything else (`recorder_failed` while recording, `recorder_silent`, `nothing_recorded`, ...): no point.

    The task that scheduled the final `project_recording` is never a useful point: it is the one that
    decided the end (its timer had fired, its signal had come), so a new run would decide the same.
    """
    if ending.workflow != "completed":
        tasks = history.workflow_tasks()
        if not tasks:
            raise NoResetPoint(
                f"its workflow was {ending.workflow} before it completed a single workflow task "
                "(no worker ever ran it): start a new recording"
            )
        point = history.point(tasks[-1], f"carry on from its last workflow task before it was {ending.workflow}")
        if RecordingStatus(point.status).in_progress:
            return point
        if point.status in _DONE:
            raise NoResetPoint(f"nothing to retry: its run had stored the recording ({point.status})")
        # Closed after it had decided its end (e.g. while notifying about a failure): judged by that end.
    error = ending.error or ""
    if error in _START_OVER or (error == ErrorCode.RECORDER_FAILED.name.lower() and not ending.started):
        start = history.last_scheduled("start_egress")
        if start is None:
            raise NoResetPoint("its history has no `start_egress` to start over from")
        task = start.activity_task_scheduled_event_attributes.workflow_task_completed_event_id
        return history.point(task, "start over: ask the recorder to start again", reapply=False)
    if error == ErrorCode.UPLOAD_TIMEOUT.name.lower():
        fired = history.last_of(EventType.EVENT_TYPE_TIMER_FIRED)
        timer = history.by_id.get(fired.timer_fired_event_attributes.started_event_id) if fired else None
        if timer is None:
            raise NoResetPoint("its history has no upload timer to start over")
        task = timer.timer_started_event_attributes.workflow_task_completed_event_id
        return history.point(task, "wait for the recorder's upload again")
    if error == ErrorCode.INVALID_FILE.name.lower():
        finalize = history.last_scheduled("finalize")
        if finalize is None:
            raise NoResetPoint("its history has no `finalize` to redo")
        task = finalize.activity_task_scheduled_event_attributes.workflow_task_completed_event_id
        return history.point(task, "validate and store the uploaded file again", finalize=finalize)
    if error in _NOT_RETRYABLE:
        raise NoResetPoint(_NOT_RETRYABLE[error].format(details=ending.details or "no details"))
    raise NoResetPoint(f"no step of a recording that ended {ending.status} ({error or 'no error'}) can be retried")


def _claim_fields(status: str) -> dict[str, object]:
    """The row as the new run resumes, written before the reset (the row takes the room back at once)."""
    fields: dict[str, object] = {"status": status, "error": None, "error_code": None, "details": None}
    if status in (RecordingStatus.STARTING.value, RecordingStatus.ACTIVE.value):
        fields["end_date"] = None
    if status == RecordingStatus.STARTING.value:
        fields["start_date"] = None
    return fields


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
        return await self._query(self._handle(recording_id))

    async def _query(self, handle: WorkflowHandle[Any, RecordingState]) -> tuple[RecordingState | None, str | None]:
        try:
            state = await handle.query(RecordingWorkflow.current, rpc_timeout=QUERY_TIMEOUT)
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

    async def retry(self, recording_id: str, *, reason: str, wait_s: float) -> dict[str, Any]:
        """Resets the recording's closed workflow to its last good step (see `choose_reset_point`)."""
        row = await self.catalog.get_recording(recording_id)
        description = await self._describe(recording_id)
        if row is None and description is None:
            raise UnknownRecording(recording_id)

        def refuse(why: str) -> RetryRefused:
            return RetryRefused(recording_id, why)

        if row is None:
            raise refuse("it has no catalog row; its workflow alone cannot be retried")
        if row.status in _DONE:
            raise refuse(f"nothing to retry: the recording is {row.status}")
        if description is None:
            raise refuse(f"the recording is {row.status} and its workflow does not exist: there is nothing to reset")
        if description.status == WorkflowExecutionStatus.RUNNING:
            hint = "; `callrec ops abort` stops it" if row.status in IN_PROGRESS else "; see `callrec ops show`"
            raise refuse(f"the recording is {row.status} and its workflow is running: nothing to retry{hint}")
        await self._check_room(row, refuse)

        run_id = description.run_id
        old = self.client.get_workflow_handle(recording_id, run_id=run_id, result_type=RecordingState)
        history = RunHistory([event async for event in old.fetch_history_events()])
        ending = await self._ending(old, description, row, refuse)
        if ending.status in _DONE:
            raise refuse(f"nothing to retry: its workflow completed as {ending.status}")
        try:
            point = choose_reset_point(history, ending)
        except NoResetPoint as err:
            raise refuse(str(err)) from None
        if point.finalize is not None:
            await self._check_upload(point.finalize, refuse)
        recording = point.status in (RecordingStatus.STARTING.value, RecordingStatus.ACTIVE.value)
        call_ended = recording and not await self._call_in_progress(row.room_id)
        if call_ended and not point.reapply:
            raise refuse(f"the call in room {row.room_id} has ended: there is nothing to record any more")

        # Take the room back first: the row is in progress again before the new run can call back or upload,
        # and the catalog's one-recording-per-room index says at once whether the room is still free.
        claimed = _claim_fields(point.status)
        previous: dict[str, object] = {key: getattr(row, key) for key in claimed}
        if not await self._write(recording_id, row.seq + 1, claimed, refuse):
            raise refuse("its catalog row changed meanwhile; try again")
        try:
            new_run = await self._reset(recording_id, run_id, point, reason)
        except RPCError as err:
            await self.catalog.project_recording(recording_id, row.seq + 2, previous)
            raise refuse(f"Temporal refused the reset: {err.message}") from err

        actions = [
            f"catalog row {row.status} -> {point.status} before the reset: the recording holds its room again"
            if row.status != point.status
            else f"catalog row stays {row.status}"
        ]
        handle = self.client.get_workflow_handle_for(RecordingWorkflow.run, recording_id, run_id=new_run)
        if call_ended:
            await handle.signal(RecordingWorkflow.end, StopRequest(reason="call_ended"))
            actions.append(
                "the room's call has ended: sent the `end` signal, so the new run stops the recorder and keeps "
                "what it recorded"
            )
        state = await self._follow(handle, recording_id, await self._reset_ms(handle, point.event_id), wait_s, actions)
        after = await self.catalog.get_recording(recording_id)
        final = await handle.describe()
        return {
            "recordingId": recording_id,
            "previousRun": {
                "runId": run_id,
                "workflow": ending.workflow,
                "status": ending.status,
                "error": ending.error,
            },
            "resetPoint": {
                "eventId": point.event_id,
                "step": point.step,
                "recordingStatus": point.status,
                "before": point.before,
                "reapplied": "signals and updates" if point.reapply else "none",
            },
            "runId": new_run,
            "actions": actions,
            "current": state.model_dump(mode="json") if state is not None else None,
            "recording": row_dict(after) if after is not None else None,
            "workflowStatus": final.status.name if final.status is not None else None,
        }

    async def _check_room(self, row: RecordingRow, refuse: Callable[[str], RetryRefused]) -> None:
        other = await self.catalog.recording_in_progress(row.room_id)
        if other is not None and other.recording_id != row.recording_id:
            raise refuse(
                f"room {row.room_id} has another recording in progress ({other.recording_id}, {other.status}), "
                "and the catalog allows one per room: retry once it has ended"
            )

    async def _ending(
        self,
        old: WorkflowHandle[Any, RecordingState],
        description: WorkflowExecutionDescription,
        row: RecordingRow,
        refuse: Callable[[str], RetryRefused],
    ) -> RunEnding:
        started = row.start_date is not None
        if description.status == WorkflowExecutionStatus.COMPLETED:
            try:
                state = await old.result()
            except Exception as err:  # noqa: BLE001 - a result that is not a RecordingState
                raise refuse(f"its workflow completed with a result that is not a recording state: {err}") from err
            return RunEnding("completed", state.status.value, state.error, state.details, state.start_date is not None)
        what = _CLOSED_ABNORMALLY.get(description.status) if description.status is not None else None
        if what is None:
            status = description.status.name.lower() if description.status is not None else "?"
            raise refuse(f"its workflow is {status}: nothing to reset")
        return RunEnding(what, row.status, row.error, row.details, started)

    async def _check_upload(self, finalize: HistoryEvent, refuse: Callable[[str], RetryRefused]) -> None:
        payloads = list(finalize.activity_task_scheduled_event_attributes.input.payloads)
        [request] = await self.client.data_converter.decode(payloads, [FinalizeInput])
        for key in (request.staging_key, final_key(request)):
            try:
                await self.store.stat(key)
            except ObjectNotFound:
                continue
            return
        raise refuse(
            f"the uploaded file is gone from the object store ({request.staging_key}): a file found invalid is "
            "deleted, and reconcile deletes the uploads of failed recordings; there is nothing to validate again"
        )

    async def _call_in_progress(self, room_id: str) -> bool:
        call = await self.catalog.get_call(room_id)
        return call is not None and bool(call.participants)

    async def _write(
        self, recording_id: str, seq: int, fields: dict[str, object], refuse: Callable[[str], RetryRefused]
    ) -> bool:
        try:
            return await self.catalog.project_recording(recording_id, seq, fields)
        except IntegrityError:  # the partial unique index: another recording of the room got in first
            raise refuse("another recording of its room is in progress, and the catalog allows one per room") from None

    async def _reset(self, recording_id: str, run_id: str | None, point: ResetPoint, reason: str) -> str:
        request = ResetWorkflowExecutionRequest(
            namespace=self.client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=recording_id, run_id=run_id or ""),
            reason=reason,
            workflow_task_finish_event_id=point.event_id,
            request_id=str(uuid.uuid4()),
            identity=self.client.identity,
        )
        if not point.reapply:
            request.reset_reapply_exclude_types.extend(
                [ResetReapplyExcludeType.RESET_REAPPLY_EXCLUDE_TYPE_SIGNAL,
                 ResetReapplyExcludeType.RESET_REAPPLY_EXCLUDE_TYPE_UPDATE]
            )  # fmt: skip
        try:
            response = await self.client.workflow_service.reset_workflow_execution(request)
        except RPCError:
            # The reset may have happened with its answer lost: then the workflow has a newer run.
            latest = await self._describe(recording_id)
            if latest is None or latest.run_id == run_id or latest.status != WorkflowExecutionStatus.RUNNING:
                raise
            return str(latest.run_id)
        return str(response.run_id)

    async def _reset_ms(self, handle: WorkflowHandle[Any, RecordingState], event_id: int) -> int:
        """When Temporal made the new run (server time): its own projection numbers are at least this."""
        async for event in handle.fetch_history_events():
            if event.event_id >= event_id:
                return int(event.event_time.ToDatetime(UTC).timestamp() * 1000)
        return int(time.time() * 1000)

    async def _follow(
        self,
        handle: WorkflowHandle[Any, RecordingState],
        recording_id: str,
        reset_ms: int,
        wait_s: float,
        actions: list[str],
    ) -> RecordingState | None:
        """Waits until the new run answers with a status other than `starting`, or closes, or `wait_s` passes.

        The new run starts from the state it had at the reset point, which it projected before (or never, if
        it resumes waiting): that state goes to the catalog once, numbered below anything the new run will
        project itself (its numbers follow workflow time, which is past `reset_ms`).
        """
        deadline = time.monotonic() + wait_s
        state: RecordingState | None = None
        synced = False
        while True:
            description = await handle.describe()
            if description.status != WorkflowExecutionStatus.RUNNING:
                status = description.status.name.lower() if description.status is not None else "?"
                actions.append(f"the new run closed ({status})")
                return state
            row = await self.catalog.get_recording(recording_id)
            now_state, error = await self._query(handle)
            if now_state is not None:
                state = now_state
                if not synced and row is not None and state.seq < reset_ms and row.seq + 1 < reset_ms:
                    synced = True
                    fields = projection_fields(state)
                    try:
                        written = await self.catalog.project_recording(recording_id, row.seq + 1, fields)
                    except IntegrityError:
                        written = False
                    actions.append(
                        f"catalog row set to the new run's state at the reset point ({state.status.value})"
                        if written
                        else f"the catalog row changed meanwhile ({row.status}); left to the new run"
                    )
                if state.status != RecordingStatus.STARTING:
                    actions.append(f"the new run is {state.status.value}")
                    return state
            if time.monotonic() >= deadline:
                if state is not None:
                    actions.append(f"after {wait_s:g} s the new run is still {state.status.value}")
                else:
                    actions.append(f"the new run did not answer within {wait_s:g} s ({error}): is a worker running?")
                return state
            await asyncio.sleep(min(0.25, max(0.0, deadline - time.monotonic())))

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
        lines += [f"  {_event_line(item)}" for item in shown["history"]]
    return "\n".join(lines)


def _event_line(item: dict[str, Any]) -> str:
    extra = ", ".join(f"{k}={v}" for k, v in item.items() if k not in ("eventId", "time", "type"))
    return f"{item['eventId']:>4} {item['time']} {item['type']}" + (f" {extra}" if extra else "")


def format_abort(result: dict[str, Any]) -> str:
    lines = [f"recording {result['recordingId']}:", *(f"  {action}" for action in result["actions"])]
    row = result["recording"]
    if row is not None:
        lines.append(f"  catalog: {row['status']}" + (f" ({row['error']})" if row["error"] else ""))
    lines.append(f"  workflow: {result['workflowStatus'] or 'none'}")
    return "\n".join(lines)


def format_retry(result: dict[str, Any]) -> str:
    previous, point = result["previousRun"], result["resetPoint"]
    ended = previous["workflow"] + (f", recording {previous['status']}" if previous["status"] else "")
    ended += f" ({previous['error']})" if previous["error"] else ""
    lines = [
        f"recording {result['recordingId']}:",
        f"  previous run {previous['runId']}: {ended}",
        f"  reset to event {point['eventId']} (WorkflowTaskCompleted; the recording was {point['recordingStatus']} "
        f"there): {point['step']}",
    ]
    if point["before"] is not None:
        lines.append(f"    the event before it: {_event_line(point['before']).strip()}")
    if point["reapplied"] == "none":
        lines.append("    signals and updates that came after it are not applied again")
    lines.append(f"  new run {result['runId']}")
    lines += [f"  {action}" for action in result["actions"]]
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
    retry = sub.add_parser(
        "retry", parents=[common], help="retry a failed or aborted recording from its last good step (Temporal reset)"
    )
    retry.add_argument("recording_id")
    retry.add_argument("--reason", default=RETRY_REASON, help="the reset's reason, kept in the workflow's history")
    retry.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the new run to take over")
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
        elif args.ops_command == "retry":
            result = await ops.retry(args.recording_id, reason=args.reason, wait_s=args.wait)
            text = format_retry(result)
        else:
            min_age = args.min_age if args.min_age is not None else settings.reconcile_min_age_s
            report = await ops.reconcile(min_age_s=min_age)
            result, text = report.model_dump(mode="json", by_alias=True), report.summary()
    except (UnknownRecording, RetryRefused) as err:
        print(f"callrec ops: {err}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2) if args.json else text, file=out)
    return 0


async def run(args: argparse.Namespace, settings: Settings, out: TextIO = sys.stdout) -> int:
    async with Ops.connect(settings) as ops:
        return await execute(args, ops, settings, out)


def main(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(run(args, settings))
