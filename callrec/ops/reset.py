"""`callrec ops retry`: where to reset a recording's closed run, read from its history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowExecutionStatus

from callrec.domain.recording import STATUS_ATTR, ErrorCode, RecordingStatus
from callrec.ops.history import payload_text, summarize_event


class NoResetPoint(Exception):
    """The run's history has no point from which a new run could carry on usefully (the message says why)."""


RETRY_REASON = "retried by an operator"
CLOSED_ABNORMALLY = {
    WorkflowExecutionStatus.TERMINATED: "terminated",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.TIMED_OUT: "timed out",
    WorkflowExecutionStatus.CANCELED: "cancelled",
}
DONE = (RecordingStatus.COMPLETE.value, RecordingStatus.LIMIT_REACHED.value)
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

    workflow: str  # how the run closed: completed, failed, terminated, timed out, cancelled
    status: str  # the recording's: the run's final state when it ended the recording, else the catalog row's
    error: str | None
    details: str | None
    started: bool  # the recorder had reported `started`
    ended_recording: bool = False  # the run closed with the recording's end (completed, or failed with its error)


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
        # MarkerRecorded event id -> local activity name (`start_egress` since the `start-egress-local` patch)
        self.local = {item["eventId"]: item["activity"] for item in self.summaries if item.get("local")}

    def workflow_tasks(self) -> list[int]:
        return [e.event_id for e in self.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED]

    def last_scheduled(self, activity: str) -> HistoryEvent | None:
        """Its last ActivityTaskScheduled event, or, run as a local activity, its last MarkerRecorded event."""
        found = [self.by_id[event_id] for event_id, name in (self.activities | self.local).items() if name == activity]
        return max(found, key=lambda event: event.event_id, default=None)

    @staticmethod
    def task_of(scheduled: HistoryEvent) -> int:
        """The WorkflowTaskCompleted event of the task that scheduled the activity (or ran the local activity)."""
        if scheduled.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            return int(scheduled.marker_recorded_event_attributes.workflow_task_completed_event_id)
        return int(scheduled.activity_task_scheduled_event_attributes.workflow_task_completed_event_id)

    def first_scheduled(self, activity: str) -> HistoryEvent | None:
        found = [self.by_id[event_id] for event_id, name in self.activities.items() if name == activity]
        return min(found, key=lambda event: event.event_id, default=None)

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
                    status = str(payload_text(fields[STATUS_ATTR.name].data))
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
      that scheduled (or, a local activity, ran) the last `start_egress` (start over; on the recorders' pool, the
      first `assign_recorder`: admission again), without the signals and updates that came after it (they were the
      failed egress's);
    - ended `upload_timeout`: the task that started the timer that ran out: the wait for the upload starts
      over (the recorder was already asked to stop);
    - ended `invalid_file`: the task that scheduled the last `finalize`: the file is validated again;
    - ended `store_unavailable`: the task that scheduled the last `finalize` or `assemble` (the recorders' pool joins
      its parts): the file is stored again;
    - anything else (`recorder_failed` while recording, `recorder_silent`, `nothing_recorded`, ...): no point.

    The task that scheduled the final `project_recording` is never a useful point: it is the one that
    decided the end (its timer had fired, its signal had come), so a new run would decide the same.
    """
    if not ending.ended_recording:
        tasks = history.workflow_tasks()
        if not tasks:
            raise NoResetPoint(
                f"its workflow was {ending.workflow} before it completed a single workflow task "
                "(no worker ever ran it): start a new recording"
            )
        point = history.point(tasks[-1], f"carry on from its last workflow task before it was {ending.workflow}")
        if RecordingStatus(point.status).in_progress:
            return point
        if point.status in DONE:
            raise NoResetPoint(f"nothing to retry: its run had stored the recording ({point.status})")
        # Closed after it had decided its end (e.g. while notifying about a failure): judged by that end.
    error = ending.error or ""
    if error in _START_OVER or (error == ErrorCode.RECORDER_FAILED.name.lower() and not ending.started):
        # A recording on the built-in recorders' pool starts with its admission (the first `assign_recorder`).
        start = history.last_scheduled("start_egress") or history.first_scheduled("assign_recorder")
        if start is None:
            raise NoResetPoint("its history has no `start_egress` or `assign_recorder` to start over from")
        task = history.task_of(start)
        return history.point(task, "start over: ask the recorder to start again", reapply=False)
    if error == ErrorCode.UPLOAD_TIMEOUT.name.lower():
        # The upload timer is the first timer that fired after the recorder was asked to stop (a late-upload
        # window that closed after it fired later).
        stop = history.last_scheduled("stop_egress")
        after = stop.event_id if stop is not None else 0
        fired = next(
            (e for e in history.events if e.event_id > after and e.event_type == EventType.EVENT_TYPE_TIMER_FIRED),
            None,
        )
        timer = history.by_id.get(fired.timer_fired_event_attributes.started_event_id) if fired else None
        if timer is None:
            raise NoResetPoint("its history has no upload timer to start over")
        task = timer.timer_started_event_attributes.workflow_task_completed_event_id
        return history.point(task, "wait for the recorder's upload again")
    if error == ErrorCode.STORE_UNAVAILABLE.name.lower():  # storing gave up: joining the parts or storing the file
        steps = [e for e in (history.last_scheduled("finalize"), history.last_scheduled("assemble")) if e is not None]
        if not steps:
            raise NoResetPoint("its history has no `finalize` or `assemble` to redo")
        last = max(steps, key=lambda event: event.event_id)
        task = last.activity_task_scheduled_event_attributes.workflow_task_completed_event_id
        if history.activities[last.event_id] == "assemble":
            return history.point(task, "join the recorded parts and store the file again")
        return history.point(task, "validate and store the uploaded file again", finalize=last)
    if error == ErrorCode.INVALID_FILE.name.lower():
        finalize = history.last_scheduled("finalize")
        if finalize is None:
            raise NoResetPoint("its history has no `finalize` to redo")
        task = finalize.activity_task_scheduled_event_attributes.workflow_task_completed_event_id
        return history.point(task, "validate and store the uploaded file again", finalize=finalize)
    if error in _NOT_RETRYABLE:
        raise NoResetPoint(_NOT_RETRYABLE[error].format(details=ending.details or "no details"))
    raise NoResetPoint(f"no step of a recording that ended {ending.status} ({error or 'no error'}) can be retried")


def claim_fields(status: str) -> dict[str, object]:
    """The row as the new run resumes, written before the reset (the row takes the room back at once)."""
    fields: dict[str, object] = {"status": status, "error": None, "error_code": None, "details": None}
    if status in (RecordingStatus.STARTING.value, RecordingStatus.ACTIVE.value):
        fields["end_date"] = None
    if status == RecordingStatus.STARTING.value:
        fields["start_date"] = None
    return fields
