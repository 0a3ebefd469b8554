"""RecordingWorkflow: one durable workflow per recording, id = recording id.

`run` is the lifecycle of DESIGN.md, one phase method per step: start egress -> wait for `started`
(active) -> record until stop / recorder stopped / failed / silent / max duration -> stop (ending, stop
egress) -> receive the upload -> validate and store -> complete (or limit_reached), notify the owner and
moderators, offer share-to-chat until shared, dismissed or expired.

Each phase owns its waits (every one bounded) and its failure exits: it raises `_Ended`, which `run` turns
into a terminal status with a reason, a catalog row that says why, and a notification. The room's chat gets
Talk's system messages as the recording starts, stops or fails. Activity options: `options.py`.

No orphans: a start given up (the recorder unreachable, failed, or silent past the start timeout) is followed by
a stop to the recorder (best effort, three attempts), before the failure is recorded. A start stopped before a
worker ran it (the API answered 503 and sent `end`, or the call ended) never asks the recorder at all.
A recording whose upload did not come within the upload timeout is failed at once, and then keeps a bounded
window open (`late_upload_window_s`) in which a late upload (a long call's slow one) still completes it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, RetryState
from temporalio.exceptions import TimeoutError as TemporalTimeout

with workflow.unsafe.imports_passed_through():
    from callrec.activities.egress import EgressActivities
    from callrec.activities.files import FileActivities
    from callrec.domain import notifications, talk_room
    from callrec.domain.encoding import encoding_of_media
    from callrec.domain.notifications import Actor, NotificationInfo, OfferEnd, ShareResult
    from callrec.domain.recording import (
        EgressStart,
        ErrorCode,
        FileStored,
        FinalizeInput,
        Recording,
        RecordingKind,
        RecordingState,
        RecordingStatus,
        StartRecordingInput,
        StopRequest,
        talk_status,
    )
    from callrec.domain.webhooks import recording_payload
    from callrec.workflows.callbacks import RecorderCallbacks
    from callrec.workflows.effects import TALK_ROOM_STATUS, reason_of
    from callrec.workflows.offer import OfferHandlers
    from callrec.workflows.options import (
        GIVE_UP_STOP,
        START_EGRESS_LOCAL,
        START_EGRESS_LOCAL_PATCH,
        execute,
        last_failure,
    )
    from callrec.workflows.parts import RecorderParts


class _Ended(Exception):
    """Raised by a phase that ends the recording early: `run` ends it with this status and reason (unless
    `recorded`: the phase ended it already)."""

    def __init__(self, status: RecordingStatus, code: ErrorCode, details: str) -> None:
        super().__init__(details)
        self.status, self.code, self.details = status, code, details
        self.recorded = False
        self.salvage = False  # the pool's recorders stored parts of it: they are joined and kept

    @classmethod
    def failed(cls, code: ErrorCode, details: str) -> _Ended:
        return cls(RecordingStatus.FAILED, code, details)


# The patch that announces `recordingStarted` for `starting` (Meet's order); histories from before replay without it.
MEET_WEBHOOK_EVENTS = "meet-webhook-events"

# The patch that closes the workflow as the recording ended: Failed (the error's name as the failure's type) for
# `failed` and `aborted`; histories from before completed with the state whatever the status.
CLOSE_AS_OUTCOME = "close-as-outcome"
# The patch that leaves the share-to-chat offer to the catalog (the notification, closed by the API or expired by
# reconcile): the workflow closes once the file is stored; histories from before kept it open until then.
OFFER_IN_CATALOG = "offer-in-catalog"
# The patch that sends a second stop to the recorder when it came before the recording was `ending` (both stops in
# one workflow task); histories from before dropped it.
STOP_AGAIN_BEFORE_ENDING = "stop-again-before-ending"
_FAILED_CLOSE = (RecordingStatus.FAILED, RecordingStatus.ABORTED)

# Why a stop came before the recorder was asked to start, in the recording's details.
_STOPPED_BEFORE_START = {
    "no_worker": "No worker took the start in time, so the API gave up on it (it answered 503)",
    "cancelled": "An operator cancelled the recording's workflow",
}
_CANCELLED_KEPT = (
    "An operator cancelled the recording's workflow: the recorder was stopped and what it recorded until then is kept."
)


@workflow.defn
class RecordingWorkflow(RecorderCallbacks, OfferHandlers):
    @workflow.init
    def __init__(self, input: StartRecordingInput) -> None:
        self.input = input
        self.state = RecordingState(recording_id=input.recording_id)
        self.projected = RecordingStatus.STARTING
        self.started = False
        self.recorder_done = False
        self.failure: str | None = None
        self.stop_reason: str | None = None
        self.stopped_by: str | None = None
        self.stop_actor: Actor | None = None  # who asked to stop (None: the call ended, or nobody in particular)
        self.accepted: bool | None = None  # whether the recorder took the start (None: not asked yet)
        self.stop_again = False  # asked to stop again before the recorder confirmed (Talk sends it again)
        self.stored: FileStored | None = None
        self.offer: NotificationInfo | None = None
        self.offer_end: OfferEnd | None = None
        self.shared: ShareResult | None = None
        self.progress_reports = 0
        self.awaiting_late_file = False
        self.parts = RecorderParts(input) if input.recorder is not None else None
        # Whether `recordingStarted` went out for `starting` (Meet's order); runs from before that change
        # announce it on `active`, as they did.
        self.announced_start = False
        self.cancelled = False  # an operator cancelled the workflow: it stops and ends `aborted`
        if input.uploaded:  # it begins with its file (`store_file`)
            self.state.status = self.projected = RecordingStatus.ENDING
            self.accepted = True

    @workflow.run
    async def run(self, input: StartRecordingInput) -> RecordingState:
        """The lifecycle runs in its own task: a cancellation (the Temporal UI's "Request Cancellation") reaches only
        this one, which turns it into a stop (`_cancelled`) and lets the lifecycle stop the recorder, keep what was
        recorded and end `aborted`. A recording that ends `failed` or `aborted` closes its workflow as Failed, with
        its error as the failure's type; a stored one completes with its state."""
        lifecycle = asyncio.ensure_future(self._lifecycle(input))
        while not lifecycle.done():
            try:
                await asyncio.shield(lifecycle)
            except asyncio.CancelledError:  # asked again: still a stop, and the lifecycle goes on
                self._cancelled()
        lifecycle.result()
        if workflow.patched(CLOSE_AS_OUTCOME) and self.state.status in _FAILED_CLOSE:
            raise ApplicationError(
                self.state.details or self.state.status.value,
                self.state,
                type=self.state.error or self.state.status.value,
                non_retryable=True,
            )
        return self.state

    async def _lifecycle(self, input: StartRecordingInput) -> None:
        try:
            within_limit = True
            if not input.uploaded:
                await self._start_egress()
                await self._announce_start()
                await self._wait_for_started()
                within_limit = await self._record()
                await self._stop()
            stored = await self._receive_file()
            await self._store(stored)
            if self.cancelled and self.state.file is not None:
                raise _Ended(RecordingStatus.ABORTED, ErrorCode.OPERATOR_CANCELLED, _CANCELLED_KEPT)
        except _Ended as ended:
            if self.accepted is None:
                self.accepted = False
            if self.parts is not None:
                await self.parts.release()
                if ended.salvage:
                    await self._salvage()
            if not ended.recorded:
                await self._end(ended)
        else:
            await self._complete(within_limit)
        await workflow.wait_condition(workflow.all_handlers_finished)

    def _cancelled(self) -> None:
        """A cancellation is a stop whatever the status (as the `end` signal), and the recording ends `aborted`."""
        self.cancelled = True
        workflow.logger.info("cancellation requested: stopping the recording, keeping what was recorded")
        if self.stop_reason is None:
            self.stop_reason = "cancelled"

    # the phases, in order
    async def _start_egress(self) -> None:
        """Asks the egress backend to record the room, with the layout and kind; not when it was stopped before a
        worker ran it (the API gave up waiting for one and answered 503, or the call ended meanwhile)."""
        input = self.input
        if self.stop_reason is not None:
            why = _STOPPED_BEFORE_START.get(self.stop_reason, f"The recording was stopped ({self.stop_reason})")
            raise _Ended(
                RecordingStatus.ABORTED,
                ErrorCode.NOTHING_RECORDED,
                f"{why}; the recorder was not asked to start and nothing was recorded.",
            )
        request = EgressStart(
            recording_id=input.recording_id,
            room_id=input.room_id,
            kind=input.kind,
            layout=input.layout,
            encoding=input.encoding,
            participants=input.participants,
            owner=input.owner,
        )
        if self.parts is not None:
            if not await self.parts.admit():
                raise _Ended.failed(
                    ErrorCode.EGRESS_UNAVAILABLE, "No recorder has room for it: every one is full, draining or offline."
                )
            self.parts.start()
        else:
            self._phase("Starting: asking the recorder to record the room")
            local = input.egress == "talk" and workflow.patched(START_EGRESS_LOCAL_PATCH)
            options = START_EGRESS_LOCAL if local else None
            try:
                egress = input.egress or "the recorder"
                await execute(EgressActivities.start_egress, request, options, summary=f"Start egress ({egress})")
            except (ActivityError, ApplicationError, TemporalTimeout) as err:  # the last two: as a local activity
                await self._stop_egress(GIVE_UP_STOP)  # the start may have reached it, and its answer got lost
                reason = reason_of(err) if isinstance(err, ActivityError) else last_failure(err)
                raise _Ended.failed(
                    ErrorCode.EGRESS_UNAVAILABLE, f"The recorder could not be started: {reason}"
                ) from err
        if workflow.patched(TALK_ROOM_STATUS):  # Talk: starting, once the recording server took the request
            await self._room_status(talk_room.starting(input.kind), only_from=list(talk_room.IDLE))
        self.accepted = True  # after the room says so: `wait_until_accepted` answers with the room starting

    async def _announce_start(self) -> None:
        """`recordingStarted` (status `starting`) once the egress was asked, as Meet sends it on egress_started."""
        if not self.input.webhooks or not workflow.patched(MEET_WEBHOOK_EVENTS):
            return
        self.announced_start = True
        payload = recording_payload(Recording.of_workflow(self.input, self.state.model_copy(deep=True)))
        await self._emit("recordingStarted", payload, RecordingStatus.STARTING.value)

    async def _wait_for_started(self) -> None:
        """Until the recorder reports `started` (-> active), fails, or the recording is stopped before."""
        timeout_s = self.input.start_timeout_s
        self._phase(f"Starting: waiting up to {timeout_s:g} s for the recorder's `started`")
        if self.parts is not None:
            await self._start_on_pool(self.parts)
        talk = workflow.patched(TALK_ROOM_STATUS)
        in_time = await self._wait(
            lambda: (
                self.started
                or self.failure is not None
                or self.stop_reason is not None
                or (talk and self.recorder_done)
            ),
            timeout_s,
        )
        if self.failure is not None:
            await self._stop_egress(GIVE_UP_STOP)
            raise _Ended.failed(ErrorCode.RECORDER_FAILED, self.failure)
        if not in_time:
            await self._stop_egress(GIVE_UP_STOP)
            raise _Ended.failed(
                ErrorCode.START_TIMEOUT, f"The recorder did not report 'started' within {timeout_s:g} s."
            )
        if not self.started and self.stop_reason is None:  # the recorder reported `stopped` instead
            raise _Ended(
                RecordingStatus.ABORTED,
                ErrorCode.NOTHING_RECORDED,
                "The recording server stopped before it started; nothing was recorded.",
            )
        if not self.started:
            await self._stop_egress()
            raise _Ended(
                RecordingStatus.ABORTED,
                ErrorCode.NOTHING_RECORDED,
                f"The recording was stopped ({self.stop_reason}) before the recorder started.",
            )
        self.state.start_date = self._now_ms()
        self._phase(f"Recording since {workflow.now().isoformat(timespec='seconds')}")
        await self._set_status(RecordingStatus.ACTIVE)
        if not talk:  # the `started` callback moved the room's status and posted the message
            await self._chat("recording_started", self._owner())

    async def _record(self) -> bool:
        """Waits while recording: until stopped, the recorder stopped or failed, or the maximum duration
        (then False). A recorder that reports progress and then falls silent for the silence timeout is
        stopped and the recording aborted; recorders that never report progress (Talk's) are not watched.
        """
        input = self.input

        def over() -> bool:
            return self.stop_reason is not None or self.recorder_done or self.failure is not None

        if self.parts is not None:
            within_limit = await self._record_on_pool(self.parts, over)
            if self.failure is not None:  # a signed `failed` report: what was recorded is kept all the same
                await self._stop_egress()
                ended = _Ended.failed(ErrorCode.RECORDER_FAILED, self.failure)
                ended.salvage = True
                raise ended
            return within_limit
        deadline = workflow.now() + timedelta(seconds=input.max_duration_s)
        within_limit = False
        while not within_limit and (left := (deadline - workflow.now()).total_seconds()) > 0:
            reports_before = self.progress_reports
            within_limit = await self._wait(over, min(left, input.recorder_silence_timeout_s))
            if not within_limit and reports_before > 0 and self.progress_reports == reports_before:
                await self._stop_egress()
                raise _Ended(
                    RecordingStatus.ABORTED,
                    ErrorCode.RECORDER_SILENT,
                    f"The recorder stopped reporting progress for {input.recorder_silence_timeout_s:g} s; "
                    "it was stopped and nothing it recorded was kept.",
                )
        if self.failure is not None:
            await self._stop_egress()
            raise _Ended.failed(ErrorCode.RECORDER_FAILED, self.failure)
        return within_limit

    async def _stop(self) -> None:
        """Ending: says who stopped it in the chat and asks the recorder to stop (unless it stopped already)."""
        if self.state.end_date is None:
            self.state.end_date = self._now_ms()
        self._phase(f"Ending ({self.stop_reason or 'stopped'}): the recorder stops and uploads the file")
        if self.state.status != RecordingStatus.ENDING:
            await self._set_status(RecordingStatus.ENDING)
        talk = workflow.patched(TALK_ROOM_STATUS)
        if self.stopped_by is not None and not talk:  # Talk says nothing when the call ended without anyone stopping it
            await self._chat("recording_stopped", Actor(id=self.stopped_by))
        if self.parts is not None:
            await self._stop_egress()
            await self.parts.release()
        elif not self.recorder_done and not await self._stop_egress() and self.stored is None:
            raise _Ended.failed(
                ErrorCode.RECORDER_FAILED, "The recorder does not know this recording any more (404 on stop)."
            )
        if talk and self.input.egress != "talk":  # Talk's recording servers confirm with `stopped`; these did now
            await self._room_status(talk_room.NONE, only_from=list(talk_room.IN_PROGRESS), actor=self.stop_actor)

    async def _receive_file(self) -> FileStored:
        """Until the recorder's upload is staged (the `store_file` update). Past the upload timeout the recording is
        failed (the owner is told), yet an upload within the late window still completes it."""
        if self.parts is not None:
            return await self._join_parts(self.parts)
        timeout_s = self.input.upload_timeout_s
        deadline = workflow.now() + timedelta(seconds=timeout_s)
        while (left := (deadline - workflow.now()).total_seconds()) > 0:
            if not await self._wait(lambda: self._file_or_failure() or self.stop_again, left):
                break
            if self._file_or_failure():
                break
            self.stop_again = False  # asked to stop again before the recorder confirmed: Talk sends it again
            await self._stop_egress()
        if self.stored is not None:
            return self.stored
        if self.failure is not None:
            raise _Ended.failed(ErrorCode.RECORDER_FAILED, self.failure)
        timed_out = _Ended.failed(
            ErrorCode.UPLOAD_TIMEOUT, f"The recorder did not upload the file within {timeout_s:g} s."
        )
        window_s = self.input.late_upload_window_s
        if window_s <= 0:
            raise timed_out
        await self._end(timed_out)
        until = workflow.now() + timedelta(seconds=window_s)
        workflow.set_current_details(
            f"Failed (upload timeout); a late upload still completes it until {until.isoformat(timespec='seconds')}."
        )
        self.awaiting_late_file = True
        arrived = await self._wait(lambda: self.stored is not None or self.cancelled, window_s)
        self.awaiting_late_file = False
        workflow.set_current_details("")
        if not arrived or self.stored is None:
            timed_out.recorded = True
            raise timed_out
        return self.stored

    def _store_timed_out(self, err: ActivityError) -> None:
        """Storing gave up after the store timeout (the object store stayed down): failed, and what was uploaded or
        recorded is kept for a retry."""
        if isinstance(err.cause, TemporalTimeout) or err.retry_state == RetryState.TIMEOUT:
            raise _Ended.failed(
                ErrorCode.STORE_UNAVAILABLE,
                f"The file could not be stored within {self.input.store_timeout_s:g} s ({last_failure(err)}); "
                "the upload is kept: retry the recording once the object store is back.",
            ) from err

    def _file_or_failure(self) -> bool:
        return self.stored is not None or self.failure is not None

    async def _store(self, stored: FileStored) -> None:
        """Validates the upload and moves it to its final key."""
        input = self.input
        request = FinalizeInput(
            recording_id=input.recording_id,
            room_id=input.room_id,
            kind=input.kind,
            staging_key=stored.staging_key,
            extension=stored.extension,
        )
        self._phase(f"Storing: validating the file ({stored.size:,} bytes uploaded)")
        try:
            self.state.file = await execute(
                FileActivities.finalize,
                request,
                summary="Validate and store the file",
                give_up_after=timedelta(seconds=input.store_timeout_s),
            )
        except ActivityError as err:
            self._store_timed_out(err)
            raise _Ended.failed(ErrorCode.INVALID_FILE, reason_of(err)) from err
        if input.egress == "talk" or input.uploaded:  # recorded as its recording server is configured: say what it made
            file = self.state.file
            self.state.encoding_used = encoding_of_media(
                width=file.width,
                height=file.height,
                framerate=file.framerate,
                video_codec=file.video_codec,
                video_profile=file.video_profile,
                audio_codec=file.audio_codec,
            )

    async def _complete(self, within_limit: bool) -> None:
        """Complete (or limit_reached): tells the owner, then keeps the offer to share it to the
        chat open until it is taken, dismissed or expires."""
        self.state.error_code = self.state.error = self.state.details = None  # a late upload after a failure
        self._phase("Complete: the file is stored")
        await self._set_end_status(
            RecordingStatus.COMPLETE if within_limit else RecordingStatus.LIMIT_REACHED, talk_room.NONE
        )
        input = self.input
        kind = "audio" if input.kind == RecordingKind.AUDIO else "video"
        self.offer = await self._notify(
            notifications.FILE_STORED,
            f"The {kind} recording of {input.room_name} is now available.",
            file_id=notifications.file_id(input.recording_id),
        )
        if input.auto_share_to_chat:
            self.offer_end = "shared"
            try:
                self.shared = await self._share(self._owner())
            except ActivityError as err:
                workflow.logger.warning("sharing to the chat failed: %s", reason_of(err))
            return
        if workflow.patched(OFFER_IN_CATALOG):  # the notification is the offer: the API takes it, reconcile expires it
            return
        if not await self._wait(lambda: self.offer_end is not None or self.cancelled, input.share_offer_expiry_s):
            self.offer_end = "expired"
            await self._close_offer("expired")

    async def _end(self, ended: _Ended) -> None:
        """A terminal status other than complete; a recording that was lost tells the chat and the moderators."""
        code = ended.code
        if self.cancelled and ended.status == RecordingStatus.ABORTED:
            code = ErrorCode.OPERATOR_CANCELLED
        self.state.error_code = int(code)
        self.state.error = code.name.lower()
        self.state.details = ended.details
        self._phase(f"{ended.status.value.capitalize()} ({self.state.error}): {ended.details}")
        if self.state.end_date is None:
            self.state.end_date = self._now_ms()
        was_recording = self.state.status in (RecordingStatus.ACTIVE, RecordingStatus.ENDING)
        # lost: failed, or the recorder fell silent (not a call that ended)
        lost = ended.status == RecordingStatus.FAILED or ended.code == ErrorCode.RECORDER_SILENT
        # from recording: `recording_failed` (Talk's), else the chat says so
        if (
            not await self._set_end_status(ended.status, talk_room.FAILED if lost else talk_room.NONE)
            and lost
            and was_recording
        ):
            await self._chat("recording_failed", notifications.SYSTEM)
        if lost:
            await self._notify(
                notifications.RECORDING_FAILED,
                f"The recording of {self.input.room_name} failed: {ended.details} "
                "Ask your administrators to check the recording server.",
            )

    # the built-in recorders' pool
    async def _start_on_pool(self, parts: RecorderParts) -> None:
        """Until the recorder reports `started`; a recorder lost before that (it never picked the part up, or
        refused it: draining) gives the start to another one with room."""
        deadline = workflow.now() + timedelta(seconds=self.input.start_timeout_s)
        while True:
            left = (deadline - workflow.now()).total_seconds()
            if left <= 0:
                return
            await self._wait(lambda: self.started or self.stop_reason is not None or parts.ended, left)
            if self.started or self.stop_reason is not None or not parts.ended:
                return
            if not await parts.take_over():
                raise _Ended.failed(
                    ErrorCode.EGRESS_UNAVAILABLE, f"No recorder could start it (last: {parts.last_failure})."
                )

    async def _record_on_pool(self, parts: RecorderParts, over: Callable[[], bool]) -> bool:
        """Until stopped or the maximum duration (then False); a lost recorder's part goes on on another one. With
        none to take over, it ends `failed`, keeping what was stored."""
        deadline = workflow.now() + timedelta(seconds=self.input.max_duration_s)
        while (left := (deadline - workflow.now()).total_seconds()) > 0:
            if not await self._wait(lambda: over() or parts.ended, left):
                return False
            if over():
                return True
            if not await parts.take_over():
                self.state.end_date = self._now_ms()
                ended = _Ended.failed(
                    ErrorCode.RECORDER_LOST,
                    f"The recorder was lost ({parts.last_failure}) and no other recorder had room to go on; what "
                    "was recorded until then is kept.",
                )
                ended.salvage = True
                raise ended
            workflow.set_current_details(f"Went on on recorder {parts.recorder_id} after losing {parts.lost[-1]}.")
        return False

    async def _join_parts(self, parts: RecorderParts) -> FileStored:
        try:
            stored, self.state.gaps = await parts.assemble()
        except ActivityError as err:
            self._store_timed_out(err)
            raise _Ended.failed(ErrorCode.NOTHING_RECORDED, reason_of(err)) from err
        return stored

    async def _salvage(self) -> None:
        """A recording that ends `failed` keeps what its recorders stored, as a playable file."""
        if self.parts is None:
            return
        try:
            await self._store(await self._join_parts(self.parts))
        except _Ended as ended:
            workflow.logger.warning("nothing could be kept: %s", ended.details)

    @workflow.signal
    def end(self, request: StopRequest) -> None:
        """The call ended, the room went away, or the API could not get a stop or start to a worker in time (it
        answered 503 and sent this instead, which waits durably for a worker): stop whatever the status."""
        if self.stop_reason is None:
            self.stop_reason = request.reason
            if request.actor is not None and self.stopped_by is None and self.state.status == RecordingStatus.ACTIVE:
                self.stopped_by = request.actor
            if request.reason == "requested" and request.actor is not None:
                self.stop_actor = Actor(type=request.actor_type, id=request.actor, name=request.actor_name)
        elif request.reason == "requested" and not self.recorder_done and self.state.status.in_progress:
            ending = self.state.status == RecordingStatus.ENDING
            if (ending and workflow.patched(TALK_ROOM_STATUS)) or (
                not ending and workflow.patched(STOP_AGAIN_BEFORE_ENDING)  # e.g. both stops in one workflow task
            ):
                self.stop_again = True

    # API
    @workflow.update
    async def wait_until_started(self) -> RecordingState:
        """Returns once the recording left `starting` and the catalog says so."""
        await workflow.wait_condition(lambda: self.projected != RecordingStatus.STARTING)
        return self.state

    @workflow.update
    async def wait_until_accepted(self) -> RecordingState:
        """Returns once the recorder took the start (the state is `starting` or later), or the start ended without
        it (the state says why)."""
        await workflow.wait_condition(
            lambda: self.accepted is True or (self.accepted is False and not self.projected.in_progress)
        )
        return self.state

    @workflow.update
    async def stop(self, request: StopRequest) -> RecordingState:
        self.stop_reason = request.reason
        self.stopped_by = request.actor or self.input.owner or "callrec"
        if request.actor is not None:
            self.stop_actor = Actor(type=request.actor_type, id=request.actor, name=request.actor_name)
        self.state.status = RecordingStatus.ENDING
        self.state.end_date = self._now_ms()
        await self._project()
        return self.state

    @stop.validator
    def _validate_stop(self, request: StopRequest) -> None:
        if self.state.status != RecordingStatus.ACTIVE or self.stop_reason is not None:
            raise ApplicationError(f"Recording is {self.state.status.value}", type="RecordingNotActive")

    @workflow.query
    def current(self) -> RecordingState:
        return self.state

    @workflow.query
    def call_recording(self) -> int:
        """Talk's recording status (0-5) of the room as this recording sees it."""
        return talk_status(self.state.status, self.input.kind)
