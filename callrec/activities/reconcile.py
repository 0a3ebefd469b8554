"""Reconciliation: repairs where the catalog or the object store disagrees with Temporal.

1. A catalog row in progress (starting / active / ending) whose workflow is closed or does not exist
   would stay in progress forever and block its room. If the workflow closed with the recording's end (completed
   with its final RecordingState, or failed with it as the failure's details), that is projected again; otherwise
   the row becomes `failed` / `workflow_lost`.
2. A staging object (`staging/{recordingId}/...`) whose recording is not in progress (finished, or
   no row at all) will never be finalized: it is deleted.
   Except those of a recording that failed `store_unavailable` or `workflow_lost`: kept for `callrec ops retry`.
3. A recorder slot (`storage/pool.py`) of a recording that is not in progress holds capacity that no recording
   uses (its workflow ended without releasing it, e.g. terminated): it is released.
4. A stored recording's share-to-chat offer older than `offer_expiry_s` is closed as expired.

Rows and objects younger than `min_age_s` are left alone: a start or an upload may be under way.
Every write uses a projection number above the row's, so it never undoes a newer projection, and a
second run finds nothing to do. The same code runs as the `reconcile` activity (scheduled through
ReconcileWorkflow) and from `callrec ops reconcile`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from sqlalchemy import select
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHistoryEventFilterType

from callrec.activities.catalog import projection_fields
from callrec.domain import talk_room
from callrec.domain.notifications import FILE_STORED
from callrec.domain.recording import ErrorCode, RecordingState
from callrec.domain.talk_room import StatusChange
from callrec.storage.catalog import Catalog
from callrec.storage.objects import ObjectNotFound, ObjectStore
from callrec.storage.pool import RecorderPool
from callrec.storage.rows import IN_PROGRESS, RecordingRow
from callrec.storage.talk_rooms import TalkRooms
from callrec.temporal import TemporalConflict, TemporalUnavailable, WorkflowNotFound, final_state, temporal_errors

log = logging.getLogger(__name__)

STAGING_PREFIX = "staging/"
WORKFLOW_LOST = "workflow_lost"
WORKFLOW_LOST_CODE = 500

# What happened to a closed workflow, as the catalog's `details` say it.
_CLOSED = {
    WorkflowExecutionStatus.FAILED: ("failed", "The recording's workflow failed."),
    WorkflowExecutionStatus.TERMINATED: ("terminated", "The recording's workflow was terminated."),
    WorkflowExecutionStatus.TIMED_OUT: ("timed_out", "The recording's workflow timed out."),
    WorkflowExecutionStatus.CANCELED: ("canceled", "The recording's workflow was cancelled."),
    WorkflowExecutionStatus.CONTINUED_AS_NEW: ("continued_as_new", "The recording's workflow continued as new."),
}
MISSING = "The recording's workflow does not exist."
# Recordings whose staged upload or recorded parts stay until they are retried or deleted: the store was down, or
# their workflow was lost (terminated by mistake: a retry carries it on and stores what the recorder recorded).
KEPT_FOR_RETRY = frozenset({ErrorCode.STORE_UNAVAILABLE.name.lower(), WORKFLOW_LOST})


# Field names in camelCase on the command line's `--json`, like the REST API's.
_CAMEL = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class ReconcileInput(BaseModel):
    model_config = _CAMEL

    min_age_s: float = Field(default=120.0, ge=0, description="rows and staging objects younger than this are skipped")


class RowFix(BaseModel):
    model_config = _CAMEL

    recording_id: str
    previous_status: str
    status: str  # the row's new status
    workflow: str  # what Temporal said: completed, failed, terminated, timed_out, canceled, missing
    details: str | None = None


class ReconcileReport(BaseModel):
    model_config = _CAMEL

    rows_checked: int = 0
    rows_too_young: list[str] = []  # in progress without a running workflow, but younger than min_age_s
    fixed: list[RowFix] = []
    keys_checked: int = 0
    keys_too_young: list[str] = []  # orphans younger than min_age_s (or of unknown age): left for a later run
    deleted_keys: list[str] = []
    released_slots: list[str] = []  # recordings whose recorder slot was released
    expired_offers: int = 0  # share-to-chat offers closed as expired

    @property
    def changed(self) -> bool:
        return bool(self.fixed or self.deleted_keys or self.released_slots or self.expired_offers)

    def counts(self) -> list[str]:
        lines = [
            f"rows in progress checked: {self.rows_checked}, fixed: {len(self.fixed)}, "
            f"too young: {len(self.rows_too_young)}",
            f"staging objects checked: {self.keys_checked}, deleted: {len(self.deleted_keys)}, "
            f"too young: {len(self.keys_too_young)}",
        ]
        if self.released_slots:
            lines.append(f"recorder slots released: {len(self.released_slots)}")
        if self.expired_offers:
            lines.append(f"share-to-chat offers expired: {self.expired_offers}")
        return lines

    def summary(self) -> str:
        lines = self.counts()
        lines += [
            f"  {fix.recording_id}: {fix.previous_status} -> {fix.status} (workflow {fix.workflow})"
            for fix in self.fixed
        ]
        lines += [f"  deleted {key}" for key in self.deleted_keys]
        lines += [f"  released the recorder slot of {recording_id}" for recording_id in self.released_slots]
        return "\n".join(lines)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _ignore(*_: Any) -> None:
    pass


class ReconcileActivities:
    def __init__(
        self, catalog: Catalog, store: ObjectStore, client: Client, *, offer_expiry_s: float | None = None
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.client = client
        self.offer_expiry_s = offer_expiry_s  # None: offers are not expired here

    @activity.defn
    async def reconcile(self, input: ReconcileInput) -> ReconcileReport:
        return await self.run(input, heartbeat=activity.heartbeat)

    async def run(self, input: ReconcileInput, heartbeat: Callable[..., None] = _ignore) -> ReconcileReport:
        """One pass over the rows in progress, then over the staging objects; returns what it changed."""
        report = ReconcileReport()
        now = time.time()
        min_age_ms = int(input.min_age_s * 1000)
        for row in await self._rows_in_progress():
            heartbeat("rows", row.recording_id)
            report.rows_checked += 1
            await self.reconcile_row(row, report, now_ms=int(now * 1000), min_age_ms=min_age_ms)
        await self._staging(report, now=now, min_age_s=input.min_age_s, heartbeat=heartbeat)
        report.deleted_keys += await self.store.sweep_unfinished(input.min_age_s)
        report.released_slots = await RecorderPool(self.catalog).release_stale(int(now * 1000) - min_age_ms)
        if self.offer_expiry_s is not None:
            report.expired_offers = await self.catalog.close_notifications(
                "expired", subject=FILE_STORED, before_timestamp=int(now - self.offer_expiry_s)
            )
        # One line (each change had its own above): a log line with newlines would be escaped into one anyway.
        counts = "; ".join(report.counts())
        if report.changed:
            log.info("reconcile changed things: %s", counts)
        else:
            log.info("reconcile: nothing to repair; %s", counts)
        return report

    async def _rows_in_progress(self) -> list[RecordingRow]:
        async with self.catalog.sessions() as session:
            query = (
                select(RecordingRow)
                .where(RecordingRow.status.in_(IN_PROGRESS))
                .order_by(RecordingRow.creation_date, RecordingRow.recording_id)
            )
            return list((await session.execute(query)).scalars().all())

    async def reconcile_row(
        self, row: RecordingRow, report: ReconcileReport, *, now_ms: int, min_age_ms: int
    ) -> RowFix | None:
        """Repairs one row in progress whose workflow is not running; returns the fix (also added to `report`)."""
        handle = self.client.get_workflow_handle(row.recording_id, result_type=RecordingState)
        try:
            with temporal_errors(row.recording_id):
                description = await handle.describe()
        except WorkflowNotFound:
            status: WorkflowExecutionStatus | None = None
            close_ms: int | None = None
        else:
            status = description.status
            close_ms = _ms(description.close_time) if description.close_time is not None else None
        if status == WorkflowExecutionStatus.RUNNING:
            return None
        if now_ms - row.creation_date < min_age_ms:
            report.rows_too_young.append(row.recording_id)
            return None

        state = await final_state(handle, status) if status is not None else None
        if state is not None and not state.status.in_progress:
            seq = max(row.seq, state.seq) + 1
            fix = RowFix(
                recording_id=row.recording_id,
                previous_status=row.status,
                status=state.status.value,
                workflow="completed" if status == WorkflowExecutionStatus.COMPLETED else "failed",
                details=state.details,
            )
            return await self._apply(row, seq, projection_fields(state), fix, report)
        if status == WorkflowExecutionStatus.COMPLETED:
            what, details = "completed", "The recording's workflow completed without a final status."
        elif status is None:
            what, details = "missing", MISSING
        else:
            what, details = _CLOSED.get(status, (status.name.lower(), "The recording's workflow closed."))
            if reason := await self._close_reason(row.recording_id, status):
                details = f"{details} ({reason})"
        fields: dict[str, object] = {
            "status": "failed",
            "error": WORKFLOW_LOST,
            "error_code": WORKFLOW_LOST_CODE,
            "details": details,
            "end_date": row.end_date or close_ms or now_ms,
        }
        fix = RowFix(
            recording_id=row.recording_id, previous_status=row.status, status="failed", workflow=what, details=details
        )
        return await self._apply(row, row.seq + 1, fields, fix, report)

    async def _apply(
        self, row: RecordingRow, seq: int, fields: dict[str, object], fix: RowFix, report: ReconcileReport
    ) -> RowFix | None:
        if not await self.catalog.project_recording(row.recording_id, seq, fields):
            log.info("recording %s changed meanwhile; left as it is", row.recording_id)
            return None
        log.info(
            "recording %s: %s -> %s (workflow %s)", fix.recording_id, fix.previous_status, fix.status, fix.workflow
        )
        if fix.status in ("failed", "aborted"):  # the room's Talk status its lost workflow can no longer move
            status = talk_room.FAILED if fix.status == "failed" else talk_room.NONE
            settled = StatusChange(room_id=row.room_id, status=status, only_from=list(talk_room.IN_PROGRESS),
                                   recording_id=row.recording_id)  # fmt: skip
            await TalkRooms(self.catalog).set_status(settled)
        report.fixed.append(fix)
        return fix

    async def _close_reason(self, workflow_id: str, status: WorkflowExecutionStatus) -> str | None:
        """The termination reason or failure message from the workflow's close event, if it has one."""
        handle = self.client.get_workflow_handle(workflow_id)
        try:
            with temporal_errors():  # the log says which workflow
                async for event in handle.fetch_history_events(
                    event_filter_type=WorkflowHistoryEventFilterType.CLOSE_EVENT
                ):
                    if status == WorkflowExecutionStatus.TERMINATED:
                        reason = event.workflow_execution_terminated_event_attributes.reason
                        return f"reason: {reason}" if reason else None
                    if status == WorkflowExecutionStatus.FAILED:
                        message = event.workflow_execution_failed_event_attributes.failure.message
                        return message or None
                    return None
        except (WorkflowNotFound, TemporalUnavailable, TemporalConflict) as err:  # the details go without the reason
            log.warning("history of workflow %s unreadable: %s", workflow_id, err)
        return None

    async def _staging(
        self, report: ReconcileReport, *, now: float, min_age_s: float, heartbeat: Callable[..., None]
    ) -> None:
        keys = await self.store.list_keys(STAGING_PREFIX)
        report.keys_checked = len(keys)
        owners = {key: parts[1] if len(parts := key.split("/")) >= 3 else None for key in keys}
        rows = await self.catalog.recordings_by_id([owner for owner in owners.values() if owner is not None])
        for key, owner in owners.items():
            heartbeat("staging", key)
            row = rows.get(owner) if owner is not None else None
            if row is not None and row.status in IN_PROGRESS:
                continue  # its workflow may still finalize it
            if row is not None and row.error in KEPT_FOR_RETRY:
                continue  # what was uploaded or recorded is kept for `callrec ops retry`
            try:
                info = await self.store.stat(key)
            except ObjectNotFound:
                continue  # gone meanwhile
            if info.modified is None or now - info.modified < min_age_s:
                report.keys_too_young.append(key)
                continue
            await self.store.delete(key)
            log.info(
                "deleted staging object %s (recording %s)", key, f"is {row.status}" if row is not None else "unknown"
            )
            report.deleted_keys.append(key)
