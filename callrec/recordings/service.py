"""`RecordingsService`: start, stop, find, list and delete recordings, for every front door.

The catalog row is the reservation: its insert fails when the room already has a recording in progress (a
partial unique index), which holds across API processes. Then the workflow starts. Everything after that is
the workflow's: the service only starts it, signals it, and asks it updates. Temporal's errors come out as
`RecordingNotFound` (the workflow is gone or closed) or `ServiceUnavailable` (Temporal did not answer).

An update needs a worker to take it: one that no worker accepts within `update_timeout_s` (none is polling the
task queue) is `WorkerUnavailable` (503) naming the recording, and what it asked for is left in a state the
client can find: a start is aborted (the durable `end` signal; the workflow never asks the recorder once a worker
runs it, and the catalog says `aborted` at once), a stop is queued (`end`), an upload is refused (the workflow
refuses that copy later too, `offered_until_ms`) so the recorder uploads again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.common import WorkflowIDConflictPolicy

from callrec.domain import talk_room
from callrec.domain.ids import new_recording_id
from callrec.domain.layout import (
    RecordingConfig,
    RecordingOverride,
    UnsupportedEncoding,
    builtin_encoding,
    effective_config,
)
from callrec.domain.notifications import NO_SESSION, Actor
from callrec.domain.participants import Participant
from callrec.domain.pool import Assignment, AssignRequest, RecorderState, cost_of
from callrec.domain.recording import (
    EXTENSIONS,
    FileStored,
    RecorderFailed,
    RecorderProgress,
    RecorderStarted,
    RecorderStopped,
    Recording,
    RecordingKind,
    RecordingState,
    RecordingStatus,
    StartRecordingInput,
    StopRequest,
)
from callrec.domain.settings import Settings
from callrec.logs import bind_recording
from callrec.recordings import errors
from callrec.recordings.deletion import IN_PROGRESS_REASON, NOT_FOUND, delete_recording, meet_reason
from callrec.recordings.offers import Offers
from callrec.recordings.talk_status import check_consent, room_status_callback
from callrec.recordings.workflow_start import start_options, started
from callrec.storage.catalog import Catalog
from callrec.storage.catalog import RecordingInProgress as CatalogRecordingInProgress
from callrec.storage.listing import After, RecordingFilter, SortField, SortOrder, list_recordings
from callrec.storage.objects import ObjectStore
from callrec.storage.pool import EPSILON, RecorderPool
from callrec.storage.rows import CallRow, RecordingRow, RoomRow
from callrec.storage.talk_rooms import TalkRooms
from callrec.temporal import WorkflowNotFound, temporal_errors
from callrec.workflows.recording import RecordingWorkflow

log = logging.getLogger(__name__)

StopReason = Literal["call_ended", "room_deleted"]
Callback = Literal["started", "stopped", "failed", "progress"]
# What a front door waits for as it starts a recording: the recorder took the start (Talk answers then), or reported
# `started` (Meet answers then); None: nothing (the start of a call starts its recording and goes on).
Until = Literal["accepted", "started"]
BULK_DELETE_CONCURRENCY = 8


def now_ms() -> int:
    return int(time.time() * 1000)


class _NotTaken(Exception):
    """No worker accepted the update within `update_timeout_s`."""


def _unless_cancelled() -> None:
    """The SDK reports a cancelled update call as timed out: a cancelled request (the client went) stays cancelled."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


# Clocks and transit: the workflow refuses a file a little before the API stops waiting for the worker to take it.
HAND_OVER_MARGIN_S = 2.0


def assignment_cost(config: RecordingConfig, kind: RecordingKind, tiles: int) -> float:
    return cost_of(config.encoding, tiles, audio_only=kind == RecordingKind.AUDIO)


@dataclass
class RecordingsService:
    settings: Settings
    catalog: Catalog
    store: ObjectStore
    temporal: Client

    @property
    def pool(self) -> RecorderPool:
        return RecorderPool(self.catalog)

    @property
    def offers(self) -> Offers:
        """Stored recordings' share-to-chat offers (in the catalog: their workflows have closed)."""
        return Offers(self.settings, self.catalog, self.temporal)

    # ------------------------------------------------------------------ look up

    async def get(self, recording_id: str) -> RecordingRow:
        row = await self.catalog.get_recording(recording_id)
        if row is None:
            raise errors.RecordingNotFound(recording_id)
        return row

    async def room(self, room_id: str) -> RoomRow:
        room = await self.catalog.get_room(room_id)
        if room is None:
            raise errors.RoomNotFound(room_id)
        return room

    async def for_callback(self, room_id: str, recording_id: str | None, *, latest: bool = False) -> RecordingRow:
        """The recording a recorder's callback or upload is about.

        callrec's own recorder names it (`recording_id`), so a late callback never reaches a newer recording of
        the room; other recorders (Talk's, LiveKit's) mean the room's recording in progress, else (`latest`) the
        room's latest one.
        """
        row: RecordingRow | None
        if recording_id is not None:
            row = await self.catalog.get_recording(recording_id)
            row = row if row is not None and row.room_id == room_id else None
        else:
            row = await self.catalog.recording_in_progress(room_id)
            if row is None and latest:
                rows = await self.catalog.recordings(room_id=room_id, limit=1)
                row = rows[0] if rows else None
        if row is None:
            raise errors.RecordingNotFound(recording_id or f"in room {room_id}")
        return row

    async def list(
        self, filters: RecordingFilter, sort_field: SortField, sort_order: SortOrder, limit: int, after: After | None
    ) -> tuple[list[RecordingRow], bool]:
        """One page of recordings and whether more follow it."""
        return await list_recordings(self.catalog, filters, sort_field, sort_order, limit, after)

    @property
    def talk_rooms(self) -> TalkRooms:
        return TalkRooms(self.catalog)

    # ------------------------------------------------------------------ start

    async def start(
        self,
        room: RoomRow,
        owner: str,
        kind: RecordingKind = RecordingKind.VIDEO,
        override: RecordingOverride | None = None,
        *,
        until: Until | None = None,
    ) -> str:
        """Checks the room (recording enabled, participants in its call), reserves it and starts the workflow.

        Returns the recording id, at once, or (`until`) once the recorder took the start or reported `started`
        (see `begin`). `owner` (who started it) gets the notifications and may upload its file.
        """
        config = effective_config(RecordingConfig.model_validate(room.config), override)
        if not config.enabled:
            raise errors.RecordingDisabled(room.room_id)
        call = await self.catalog.get_call(room.room_id)
        if call is None or not call.participants:
            raise errors.NoParticipants(room.room_id)
        await check_consent(self.settings, self.catalog, room, call)
        return await self.begin(room, config, kind, call, owner, until=until)

    async def _start_until(self, recording_id: str, until: Until, start: WithStartWorkflowOperation[Any, Any]) -> None:
        """Starts the workflow and asks it `until` in one call (update-with-start): returns once the recorder took the
        start (`accepted`) or reported `started`. StartRefused / StartFailed when it did not, and WorkerUnavailable
        when no worker took the start (then the recording is aborted, never left starting)."""
        room_id = recording_id.split("--", 1)[0]
        update = RecordingWorkflow.wait_until_started if until == "started" else RecordingWorkflow.wait_until_accepted
        try:
            state = await self._update(recording_id, update, None, self.settings.start_timeout_s + 15, start=start)
        except _NotTaken:
            raise await self._abandon_start(recording_id) from None
        except (TimeoutError, WorkflowUpdateFailedError, WorkflowNotFound) as exc:
            # The workflow keeps its own start timeout: it ends `failed` and stops egress by itself.
            raise errors.StartFailed(room_id, "no worker answered in time") from exc
        if until == "accepted" and not state.status.in_progress:
            raise errors.StartRefused(room_id, state.details or state.status.value)
        if until == "started" and state.status != RecordingStatus.ACTIVE:
            raise errors.StartFailed(room_id, state.details or state.status.value)

    async def _abandon_start(self, recording_id: str) -> errors.WorkerUnavailable:
        """No worker took the start: the workflow is told to abort (durably, for when a worker runs it: it then
        never asks the recorder to start), and the catalog says so now, numbered below anything the workflow
        projects (so a run that did start meanwhile wins). Returns the error to answer."""
        wait_s = self.settings.update_timeout_s
        try:
            with temporal_errors(recording_id):
                await self._handle(recording_id).signal(RecordingWorkflow.end, StopRequest(reason="no_worker"))
        except (errors.ServiceUnavailable, WorkflowNotFound):
            return errors.WorkerUnavailable(
                recording_id,
                f"No worker took recording '{recording_id}' within {wait_s:g} s, and it could not be aborted: it "
                "starts once a worker runs; GET /api/v1/recordings/{recordingId} shows its status.",
            )
        aborted = {
            "status": RecordingStatus.ABORTED.value,
            "error": "nothing_recorded",
            "error_code": 410,
            "details": f"No worker took the start within {wait_s:g} s; nothing was recorded.",
            "end_date": now_ms(),
        }
        await self.catalog.project_recording(recording_id, 1, aborted)
        log.warning("no worker took the start of %s within %g s: aborted", recording_id, wait_s)
        return errors.WorkerUnavailable(
            recording_id,
            f"No worker took recording '{recording_id}' within {wait_s:g} s (is the worker running?): it was "
            "aborted before the recorder was asked to start. Start it again once a worker runs.",
        )

    async def adopt_upload(self, room: RoomRow, recording_id: str, owner: str, kind: RecordingKind) -> None:
        """A file uploaded with no recording to take it becomes a recording of its own, as Talk stores such an upload
        for its owner: `recording_id` (where it was staged) begins `ending`, waiting for that file (`store_file`)."""
        config = RecordingConfig.model_validate(room.config)
        call = await self.catalog.get_call(room.room_id)
        participants = call.participants if call is not None else []
        await self._reserve(room, recording_id, config, kind, participants, owner, RecordingStatus.ENDING)
        settings = self.settings
        upload_timeout_s = settings.update_timeout_s + 60  # the file is being handed over
        workflow_input = self._input(room, recording_id, config, kind, participants, owner, uploaded=True,
                                     upload_timeout_s=upload_timeout_s, auto_share_to_chat=False)  # fmt: skip
        await self._start_workflow(workflow_input, RecordingStatus.ENDING)

    async def begin(
        self, room: RoomRow, config: RecordingConfig, kind: RecordingKind, call: CallRow, owner: str,
        *, until: Until | None = None,
    ) -> str:  # fmt: skip
        if self.settings.egress == "builtin":  # the recording shows what the built-in recorder writes
            try:
                encoding = builtin_encoding(config.encoding, audio_only=kind == RecordingKind.AUDIO)
                config = config.model_copy(update={"encoding": encoding})
            except UnsupportedEncoding as exc:
                raise errors.EncodingNotSupported(exc.field, exc.message) from exc
        recording_id = new_recording_id(room.room_id)
        bind_recording(recording_id)  # the lines about starting it, and the request's access line, name it
        participants = call.participants
        row = await self._reserve(room, recording_id, config, kind, participants, owner, RecordingStatus.STARTING)
        assignment = await self._admit(row, config, kind, len(participants))
        settings = self.settings
        workflow_input = self._input(
            room, recording_id, config, kind, participants, owner,
            recorder=assignment, cost=assignment_cost(config, kind, len(participants)), egress=settings.egress,
            recorder_silence_timeout_s=settings.recorder_silence_timeout_s,
            late_upload_window_s=settings.late_upload_window_s,
        )  # fmt: skip
        await self._start_workflow(workflow_input, RecordingStatus.STARTING, until)
        return recording_id

    async def _reserve(
        self, room: RoomRow, recording_id: str, config: RecordingConfig, kind: RecordingKind,
        participants: Sequence[dict[str, Any]], owner: str, status: RecordingStatus,
    ) -> RecordingRow:  # fmt: skip
        """The recording's catalog row, which reserves the room: RoomAlreadyRecording when one is in progress."""
        row = RecordingRow(
            recording_id=recording_id,
            room_id=room.room_id,
            room_name=room.room_name,
            status=status.value,
            layout=config.layout.value,
            encoding=config.model_dump(mode="json", by_alias=True)["encoding"],
            filename=f"{recording_id}.{EXTENSIONS[kind]}",
            kind=kind.value,
            owner=owner,
            participants=list(participants),
            creation_date=now_ms(),
        )
        try:
            return await self.catalog.add_recording(row)
        except CatalogRecordingInProgress as exc:
            raise errors.RoomAlreadyRecording(room.room_id) from exc

    def _input(
        self, room: RoomRow, recording_id: str, config: RecordingConfig, kind: RecordingKind,
        participants: Sequence[dict[str, Any]], owner: str, **more: Any,
    ) -> StartRecordingInput:  # fmt: skip
        settings = self.settings
        base: dict[str, Any] = {
            "recording_id": recording_id,
            "room_id": room.room_id,
            "room_name": room.room_name,
            "kind": kind,
            "layout": config.layout,
            "encoding": config.encoding,
            "participants": [Participant.model_validate(p) for p in participants],
            "start_timeout_s": settings.start_timeout_s,
            "upload_timeout_s": settings.upload_timeout_s,
            "max_duration_s": settings.max_duration_s,
            "store_timeout_s": settings.store_timeout_s,
            "owner": owner,
            "auto_share_to_chat": config.autoShareToChat,
            "share_offer_expiry_s": settings.share_offer_expiry_s,
            "webhooks": bool(settings.webhooks),
        }
        return StartRecordingInput(**(base | more))

    async def _start_workflow(
        self, workflow_input: StartRecordingInput, status: RecordingStatus, until: Until | None = None
    ) -> None:
        """The recording's workflow (with `until`: and the update that waits for it, one request to Temporal); when
        Temporal does not take it, the reserved row says so (`failed`)."""
        recording_id = workflow_input.recording_id
        options = start_options(workflow_input, status, self.settings.task_queue)
        start: WithStartWorkflowOperation[Any, Any] | None = None
        try:
            if until is None:
                with temporal_errors(recording_id):
                    await self.temporal.start_workflow(RecordingWorkflow.run, workflow_input, **options)
                return
            # USE_EXISTING: the SDK sends the request again until a worker took the update (the id is new otherwise)
            conflict = WorkflowIDConflictPolicy.USE_EXISTING
            start = WithStartWorkflowOperation(
                RecordingWorkflow.run, workflow_input, id_conflict_policy=conflict, **options
            )
            await self._start_until(recording_id, until, start)
        except errors.ServiceUnavailable as exc:
            if isinstance(exc, errors.WorkerUnavailable) or (start is not None and await started(start)):
                raise  # it runs: what it asked for is the workflow's (as for an update that Temporal did not answer)
            failed = {"status": RecordingStatus.FAILED.value, "error": "workflow_unavailable", "details": str(exc)}
            await self.catalog.project_recording(recording_id, 1, failed)
            await self.pool.release(recording_id)
            raise

    async def _admit(
        self, row: RecordingRow, config: RecordingConfig, kind: RecordingKind, tiles: int
    ) -> Assignment | None:
        """The built-in recorders' admission: a slot on a recorder with room, or no recording at all (the row that
        reserved the room goes again, so nothing half-started stays)."""
        if self.settings.egress != "builtin":
            return None
        cost = assignment_cost(config, kind, tiles)
        request = AssignRequest(recording_id=row.recording_id, room_id=row.room_id, cost=cost)
        assignment = await self.pool.assign(request, now_ms())
        if assignment is None:
            await self.catalog.withdraw_recording(row.recording_id)
            log.warning("no recorder has room for %s (cost %g)", row.recording_id, cost)
            taking = [r.capacity for r in await self.pool.recorders(now_ms()) if r.state == RecorderState.ACTIVE]
            largest = max(taking) if taking and max(taking) + EPSILON < cost else None
            raise errors.NoRecorderCapacity(row.room_id, cost, largest)
        return assignment

    # ------------------------------------------------------------------ stop

    async def stop(self, recording_id: str, actor: str) -> Recording:
        """Stops an active recording (`ending`: the recorder uploads and the file is stored). As in Meet, one still
        `starting` is ended all the same (durably; it ends `aborted`) and the stop answers RecordingNotActive."""
        row = await self.get(recording_id)
        request = StopRequest(reason="requested", actor=actor)
        if row.status == RecordingStatus.STARTING.value:
            with contextlib.suppress(WorkflowNotFound), temporal_errors(recording_id):  # closed already: nothing to end
                await self._handle(recording_id).signal(RecordingWorkflow.end, request)
            raise errors.RecordingNotActive(recording_id, row.status)
        if row.status != RecordingStatus.ACTIVE.value:
            raise errors.RecordingNotActive(recording_id, row.status)
        try:
            await self._update(recording_id, RecordingWorkflow.stop, request)
        except _NotTaken:
            raise await self._queue_stop(recording_id, request) from None
        except (WorkflowUpdateFailedError, WorkflowNotFound) as exc:  # it left `active` meanwhile
            raise errors.RecordingNotActive(recording_id, (await self.get(recording_id)).status) from exc
        return Recording.model_validate(await self.get(recording_id))

    async def _queue_stop(self, recording_id: str, request: StopRequest) -> errors.WorkerUnavailable:
        """No worker took the stop: it goes as the durable `end` signal, which the workflow gets once a worker
        runs (the recorder records until then). Returns the error to answer."""
        wait_s = self.settings.update_timeout_s
        try:
            with temporal_errors(recording_id):
                await self._handle(recording_id).signal(RecordingWorkflow.end, request)
        except errors.ServiceUnavailable:
            what = "it could not be queued either: stop it again"
        except WorkflowNotFound:
            what = "it has ended meanwhile"
        else:
            what = "the stop is queued and takes effect once a worker runs"
        return errors.WorkerUnavailable(
            recording_id, f"No worker took the stop of recording '{recording_id}' within {wait_s:g} s: {what}."
        )

    async def stop_room(self, room_id: str, actor: Actor) -> None:
        """Stops the room's recording in progress, whatever its status (asked again while it is ending, the stop is
        sent to the recorder again); nothing to stop is no error."""
        row = await self.catalog.recording_in_progress(room_id)
        if row is None:
            return
        request = StopRequest(reason="requested", actor=actor.id, actor_type=actor.type, actor_name=actor.name)
        try:
            if row.status == RecordingStatus.ACTIVE.value:
                with contextlib.suppress(WorkflowUpdateFailedError):  # refused: stopped meanwhile; `end` sends it again
                    await self._update(row.recording_id, RecordingWorkflow.stop, request)
                    return
            with temporal_errors(row.recording_id):
                await self._handle(row.recording_id).signal(RecordingWorkflow.end, request)
        except _NotTaken:
            # Talk's stop answers once the request is accepted: the queued stop is durable, and the room's status
            # changes when the recorder reports it stopped (Meet's `stop` answers 503 instead).
            log.warning("%s", await self._queue_stop(row.recording_id, request))
        except WorkflowNotFound:
            pass  # it ended meanwhile: nothing left to stop

    async def end(self, recording_id: str, reason: StopReason) -> None:
        """The call ended or the room went away: the recording stops and is stored (aborted if not started)."""
        try:
            with temporal_errors(recording_id):
                await self._handle(recording_id).signal(RecordingWorkflow.end, StopRequest(reason=reason))
        except WorkflowNotFound:
            pass  # the workflow already closed: nothing left to stop

    # ------------------------------------------------------------------ recorder callbacks

    async def recorder_callback(
        self, row: RecordingRow, callback: Callback, argument: object = None, actor: Actor | None = None
    ) -> None:
        """Hands a recorder's `started` / `stopped` / `failed` / `progress` report to the recording's workflow, then
        moves the room's Talk status as Talk does on these callbacks (`actor`: the one the callback names)."""
        if callback == "started" and row.status != RecordingStatus.STARTING.value:
            raise errors.RecordingNotFound(row.recording_id)  # only a starting recording can start
        signals = {
            "started": (RecordingWorkflow.recorder_started, RecorderStarted),
            "stopped": (RecordingWorkflow.recorder_stopped, RecorderStopped),
            "failed": (RecordingWorkflow.recorder_failed, RecorderFailed),
            "progress": (RecordingWorkflow.recorder_progress, RecorderProgress),
        }
        signal, model = signals[callback]
        arg = argument if isinstance(argument, model) else model()
        if isinstance(arg, RecorderProgress) and arg.duration_s is not None and arg.bytes is not None:
            # what GET shows while it records (the workflow's projection writes the file's own once stored)
            await self.catalog.record_progress(row.recording_id, arg.duration_s, arg.bytes)
        try:
            with temporal_errors(row.recording_id):
                await self._handle(row.recording_id).signal(signal, arg)
        except WorkflowNotFound as exc:
            raise errors.RecordingNotFound(row.recording_id) from exc
        if callback == "started":
            status = talk_room.recording(RecordingKind(row.kind))
            await room_status_callback(self.catalog, row.room_id, status, actor or NO_SESSION)
        elif callback in ("stopped", "failed"):
            status = talk_room.NONE if callback == "stopped" else talk_room.FAILED
            await room_status_callback(self.catalog, row.room_id, status, actor)

    async def for_upload(self, room_id: str, recording_id: str | None) -> RecordingRow:
        """The recording an upload is for: the one callrec's recorder names; else the room's recording waiting for
        its file (active or ending), else the room's latest one that is not starting (one that gave up waiting for
        its file, or stored it: a retried upload)."""
        if recording_id is not None:
            return await self.for_callback(room_id, recording_id)
        starting = RecordingStatus.STARTING.value
        row = await self.catalog.recording_in_progress(room_id)
        if row is not None and row.status != starting:
            return row
        for row in await self.catalog.recordings(room_id=room_id, limit=2):  # at most one is in progress
            if row.status != starting:
                return row
        raise errors.RecordingNotFound(f"in room {room_id}")

    async def store_file(self, recording_id: str, file: FileStored) -> FileStored:
        """Gives an uploaded file to the recording; returns the file it keeps (an earlier upload's, on a retry).

        WorkerUnavailable when no worker takes it in time: the workflow will refuse this copy (the caller drops it)
        and the recorder uploads again."""
        wait_s = self.settings.update_timeout_s
        offer = file.model_copy(update={"offered_until_ms": now_ms() + int(wait_s * 1000)})
        try:
            kept = await self._update(
                recording_id, RecordingWorkflow.store_file, offer, wait_s=wait_s + HAND_OVER_MARGIN_S
            )
            return cast(FileStored, kept)
        except _NotTaken:
            raise errors.WorkerUnavailable(
                recording_id,
                f"No worker took the upload of recording '{recording_id}' within {wait_s:g} s; upload it again",
            ) from None
        except WorkflowUpdateFailedError as exc:
            raise errors.NotExpectingFile(str(exc.cause or exc)) from exc
        except WorkflowNotFound as exc:
            raise errors.RecordingNotFound(recording_id) from exc

    # ------------------------------------------------------------------ delete

    async def delete(self, row: RecordingRow) -> None:
        """Deletes a finished recording: its objects first, then its row, so a failure half way can be retried."""
        reason = await delete_recording(self.catalog, self.store, row)
        if reason == NOT_FOUND:
            raise errors.RecordingNotFound(row.recording_id)
        if reason == IN_PROGRESS_REASON:
            raise errors.RecordingInProgress(row.recording_id, row.status)
        if reason is not None:
            raise errors.StoreUnavailable(reason)

    async def delete_many(
        self, recording_ids: Sequence[str], refuse: Callable[[RecordingRow], str | None] = lambda _: None
    ) -> dict[str, str | None]:
        """Deletes each recording (`refuse` may keep one, saying why); by id, why it was not deleted or None."""
        rows = await self.catalog.recordings_by_id(recording_ids)
        limit = asyncio.Semaphore(BULK_DELETE_CONCURRENCY)

        async def delete(recording_id: str) -> str | None:
            row = rows.get(recording_id)
            if row is None:
                return NOT_FOUND
            if (refused := refuse(row)) is not None:
                return refused
            async with limit:
                try:
                    return await delete_recording(self.catalog, self.store, row)
                except Exception:
                    log.exception("deleting recording %s failed", recording_id)
                    return "Unexpected error; see the server log"

        reasons = await asyncio.gather(*(delete(i) for i in recording_ids))
        return {i: meet_reason(i, rows.get(i), reason) for i, reason in zip(recording_ids, reasons, strict=True)}

    # ------------------------------------------------------------------ helpers

    def _handle(self, recording_id: str) -> WorkflowHandle[RecordingWorkflow, RecordingState]:
        return self.temporal.get_workflow_handle_for(RecordingWorkflow.run, recording_id)

    async def _update(
        self,
        recording_id: str,
        update: Any,  # a RecordingWorkflow update method
        arg: object = None,
        result_timeout_s: float | None = None,
        *,
        wait_s: float | None = None,
        start: WithStartWorkflowOperation[Any, Any] | None = None,
    ) -> Any:
        """Asks the workflow an update (`start`: starting the workflow with it): _NotTaken when no worker accepts it
        within `wait_s` (default `update_timeout_s`), TimeoutError when its result takes longer than
        `result_timeout_s` (default: no limit); WorkflowUpdateFailedError when the workflow refuses it,
        WorkflowNotFound when it has closed."""
        args = () if arg is None else (arg,)
        accepted = WorkflowUpdateStage.ACCEPTED
        with temporal_errors(recording_id):
            try:
                taking = (
                    self._handle(recording_id).start_update(update, args=args, wait_for_stage=accepted)
                    if start is None
                    else self.temporal.start_update_with_start_workflow(
                        update, args=args, start_workflow_operation=start, wait_for_stage=accepted
                    )
                )
                taken = await asyncio.wait_for(taking, wait_s if wait_s is not None else self.settings.update_timeout_s)
            except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as exc:  # the SDK's word for timed out
                _unless_cancelled()
                raise _NotTaken(recording_id) from exc
            try:
                return await asyncio.wait_for(taken.result(), result_timeout_s)
            except WorkflowUpdateRPCTimeoutOrCancelledError as exc:
                _unless_cancelled()
                raise TimeoutError(f"the update of {recording_id} did not complete in time") from exc
