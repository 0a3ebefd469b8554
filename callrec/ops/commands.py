"""`callrec ops list | show | abort | reconcile` (and `retry`, from `RetryCommands`): the operations as `Ops`."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from temporalio.client import WorkflowExecutionStatus

from callrec.activities.reconcile import ReconcileActivities, ReconcileInput, ReconcileReport
from callrec.domain import talk_room
from callrec.domain.recording import RecordingState, StopRequest
from callrec.domain.settings import Settings
from callrec.domain.talk_room import StatusChange
from callrec.ops.base import UnknownRecording
from callrec.ops.history import summarize_event
from callrec.ops.output import error_view, recording_view, workflow_view
from callrec.ops.retry import RetryCommands
from callrec.storage.catalog import Catalog
from callrec.storage.rows import IN_PROGRESS, RecordingRow
from callrec.storage.stores import make_store
from callrec.storage.talk_rooms import TalkRooms
from callrec.temporal import connect, final_state
from callrec.workflows.recording import RecordingWorkflow

OPERATOR_ABORTED = "operator_aborted"
OPERATOR_ABORTED_CODE = 410  # like the other `aborted` recordings: nothing usable is kept


class Ops(RetryCommands):
    """The operations on the catalog, the object store and Temporal; `connect` opens them from the settings."""

    @classmethod
    @asynccontextmanager
    async def connect(cls, settings: Settings) -> AsyncIterator[Ops]:
        client = await connect(settings)
        catalog = Catalog.from_url(settings.catalog_url)
        try:
            store = await make_store(settings)
            yield cls(catalog=catalog, store=store, client=client, offer_expiry_s=settings.share_offer_expiry_s)
        finally:
            await catalog.close()

    async def list_recordings(
        self, *, status: str | None = None, room: str | None = None, since_ms: int | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        rows = await self.catalog.recordings(room_id=room, status=status, created_since_ms=since_ms, limit=limit)
        return [recording_view(row) for row in rows]

    async def show(self, recording_id: str, *, events: int = 0) -> dict[str, Any]:
        """The recording's error, catalog row, workflow and current state, and its last `events` history events
        (0: all of them; workflow-task bookkeeping left out)."""
        row = await self.catalog.get_recording(recording_id)
        description = await self._describe(recording_id)
        if row is None and description is None:
            raise UnknownRecording(recording_id)
        shown: dict[str, Any] = {
            "recordingId": recording_id,
            "error": None,
            "recording": recording_view(row) if row is not None else None,
            "workflow": workflow_view(description) if description is not None else None,
            "current": None,
            "history": [],
            "historyEvents": 0,
        }
        if description is not None and description.status == WorkflowExecutionStatus.RUNNING:
            state, error = await self._current(recording_id, description.task_queue)
            shown["current"] = state.model_dump(mode="json") if state is not None else None
            if error is not None:
                shown["currentError"] = error
        if description is not None:
            activities: dict[int, str] = {}
            last: deque[dict[str, Any]] = deque(maxlen=events or None)
            async for event in self._handle(recording_id).fetch_history_events():
                if (item := summarize_event(event, activities)) is not None:
                    last.append(item)
                    shown["historyEvents"] += 1
            shown["history"] = list(last)
        shown["error"] = error_view(shown["recording"], shown["current"])
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
            state, _ = await self._current(recording_id, description.task_queue)
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
        result["recording"] = recording_view(after) if after is not None else None
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
                if description.status is not None and (ended := await final_state(handle, description.status)):
                    actions.append(f"the recording finished by itself as {ended.status.value}")
                    return
                status = description.status.name.lower() if description.status else "?"
                actions.append(f"the workflow closed by itself ({status})")
                return
            now_state, _ = (
                await self._current(recording_id, description.task_queue) if state is not None else (None, None)
            )
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
            # The room's Talk status no callback will move now: none, so the room can record again.
            settled = StatusChange(room_id=current.room_id, status=talk_room.NONE,
                                   only_from=list(talk_room.IN_PROGRESS), recording_id=recording_id)  # fmt: skip
            await TalkRooms(self.catalog).set_status(settled)
        else:
            actions.append("the row changed meanwhile; left as it is")

    async def reconcile(self, *, min_age_s: float) -> ReconcileReport:
        reconciler = ReconcileActivities(self.catalog, self.store, self.client, offer_expiry_s=self.offer_expiry_s)
        return await reconciler.run(ReconcileInput(min_age_s=min_age_s))
