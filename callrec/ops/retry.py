"""`callrec ops retry`: a failed or aborted recording's closed run reset to its last good step (see `reset`)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import UTC
from typing import Any

from sqlalchemy.exc import IntegrityError
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import ResetReapplyExcludeType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import WorkflowExecutionDescription, WorkflowExecutionStatus, WorkflowHandle

from callrec.activities.catalog import projection_fields
from callrec.activities.files import final_key
from callrec.domain.recording import FinalizeInput, RecordingState, RecordingStatus, StopRequest
from callrec.ops.base import OpsBase, UnknownRecording
from callrec.ops.output import recording_view
from callrec.ops.reset import (
    CLOSED_ABNORMALLY,
    DONE,
    NoResetPoint,
    ResetPoint,
    RunEnding,
    RunHistory,
    choose_reset_point,
    claim_fields,
)
from callrec.storage.objects import ObjectNotFound
from callrec.storage.rows import IN_PROGRESS, RecordingRow
from callrec.temporal import TemporalConflict, TemporalUnavailable, WorkflowNotFound, final_state, temporal_errors
from callrec.workflows.recording import RecordingWorkflow


class RetryRefused(Exception):
    def __init__(self, recording_id: str, reason: str) -> None:
        super().__init__(f"cannot retry {recording_id!r}: {reason}")


class RetryCommands(OpsBase):
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
        if row.status in DONE:
            raise refuse(f"nothing to retry: the recording is {row.status}")
        if description is None:
            raise refuse(f"the recording is {row.status} and its workflow does not exist: there is nothing to reset")
        if description.status == WorkflowExecutionStatus.RUNNING and row.status not in IN_PROGRESS:
            # It ended the recording and is finishing its last steps (the chat message, the notification).
            description = await self._closed(recording_id, description, wait_s)
        if description.status == WorkflowExecutionStatus.RUNNING:
            hint = "; `callrec ops abort` stops it" if row.status in IN_PROGRESS else "; see `callrec ops show`"
            raise refuse(f"the recording is {row.status} and its workflow is running: nothing to retry{hint}")
        await self._check_room(row, refuse)

        run_id = description.run_id
        old = self.client.get_workflow_handle(recording_id, run_id=run_id, result_type=RecordingState)
        history = RunHistory([event async for event in old.fetch_history_events()])
        ending = await self._ending(old, description, row, refuse)
        if ending.status in DONE:
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
        claimed = claim_fields(point.status)
        previous: dict[str, object] = {key: getattr(row, key) for key in claimed}
        if not await self._write(recording_id, row.seq + 1, claimed, refuse):
            raise refuse("its catalog row changed meanwhile; try again")
        try:
            new_run = await self._reset(recording_id, run_id, point, reason)
        except (WorkflowNotFound, TemporalConflict) as err:
            await self.catalog.project_recording(recording_id, row.seq + 2, previous)
            raise refuse(f"Temporal refused the reset: {err}") from err
        except Exception:  # Temporal did not answer (the command says so), or a bug: the row as it was, all the same
            await self.catalog.project_recording(recording_id, row.seq + 2, previous)
            raise

        actions = [
            f"catalog row {row.status} -> {point.status} before the reset: the recording holds its room again"
            if row.status != point.status
            else f"catalog row stays {row.status}"
        ]
        handle = self.client.get_workflow_handle(recording_id, run_id=new_run, result_type=RecordingState)
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
            "recording": recording_view(after) if after is not None else None,
            "workflowStatus": final.status.name if final.status is not None else None,
        }

    async def _closed(
        self, recording_id: str, description: WorkflowExecutionDescription, wait_s: float
    ) -> WorkflowExecutionDescription:
        """The workflow's description once it has closed, or as it is after `wait_s`."""
        deadline = time.monotonic() + wait_s
        while description.status == WorkflowExecutionStatus.RUNNING and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            description = await self._describe(recording_id) or description
        return description

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
        if description.status is not None and (state := await final_state(old, description.status)) is not None:
            # The run ended the recording (completed with its state, or failed with it as the failure's details).
            closed = "completed" if description.status == WorkflowExecutionStatus.COMPLETED else "failed"
            started = state.start_date is not None
            return RunEnding(closed, state.status.value, state.error, state.details, started, ended_recording=True)
        if description.status == WorkflowExecutionStatus.COMPLETED:
            raise refuse("its workflow completed with a result that is not a recording state")
        what = CLOSED_ABNORMALLY.get(description.status) if description.status is not None else None
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
            with temporal_errors():  # no `what`: a refusal says Temporal's own message
                response = await self.client.workflow_service.reset_workflow_execution(request)
        except (WorkflowNotFound, TemporalUnavailable, TemporalConflict):
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
