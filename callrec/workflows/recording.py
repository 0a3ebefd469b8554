"""RecordingWorkflow: one durable workflow per recording, id = recording id.

start egress -> wait `started` -> active -> wait stop / recorder stopped / failed / max duration
-> ending: stop egress, wait for the upload -> validate and store -> complete (or limit_reached)
-> notify the owner and moderators -> offer share-to-chat until shared, dismissed or expired.
Every wait is bounded, every failure path ends in a terminal status with a reason and a notification.
The room's chat gets Talk's system messages as the recording starts, stops or fails.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from callrec.activities.catalog import CatalogActivities
    from callrec.activities.egress import EgressActivities
    from callrec.activities.files import FileActivities
    from callrec.activities.notify import NotifyActivities
    from callrec.activities.webhooks import WebhookActivities
    from callrec.domain import notifications
    from callrec.domain.notifications import (
        Actor,
        ChatPost,
        CloseOffer,
        DismissRequest,
        NotificationInfo,
        NotificationPost,
        OfferEnd,
        ShareRequest,
        ShareResult,
        ShareToChat,
    )
    from callrec.domain.recording import (
        STATUS_ATTR,
        EgressStart,
        EgressStop,
        ErrorCode,
        FileStored,
        FinalizeInput,
        RecorderFailed,
        RecorderProgress,
        RecorderStarted,
        RecorderStopped,
        RecordingKind,
        RecordingState,
        RecordingStatus,
        StartRecordingInput,
        StopRequest,
        talk_status,
    )
    from callrec.domain.webhooks import EventName, WebhookEvent

# The catalog and the object store come back eventually: retry for as long as it takes.
DURABLE = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
EGRESS_START = RetryPolicy(maximum_attempts=3, non_retryable_error_types=["EgressRejected"])
EGRESS_STOP = RetryPolicy(maximum_attempts=5, non_retryable_error_types=["EgressRejected", "EgressNotFound"])
# Recordings started before notifications and chat messages existed replay without them.
NOTIFY_PATCH = "notify-chat-share"
# ... and those started before recorders were watched for silence, with one timer for the whole recording.
SILENCE_PATCH = "recorder-silence"
# ... and those started before webhooks existed, without emitting events.
WEBHOOK_PATCH = "webhooks"
# ... and those started before the catalog projection and chat messages ran as local activities, with
# (regular) activities for them. Local: the worker runs them inside the workflow task, with no round trip
# through the Temporal server; they are short, idempotent database writes (numbered projection, dedupe key).
LOCAL_WRITES_PATCH = "local-catalog-writes"
STATUS_EVENTS: dict[RecordingStatus, EventName] = {
    RecordingStatus.ACTIVE: "recordingStarted",
    RecordingStatus.COMPLETE: "recordingEnded",
    RecordingStatus.LIMIT_REACHED: "recordingEnded",
    RecordingStatus.ABORTED: "recordingEnded",
    RecordingStatus.FAILED: "recordingFailed",
}
FINALIZE = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=["InvalidRecordingFile"],
)


def _reason(err: ActivityError) -> str:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause or err)


@workflow.defn
class RecordingWorkflow:
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
        self.stored: FileStored | None = None
        self.notifying = False
        self.offer: NotificationInfo | None = None
        self.offer_end: OfferEnd | None = None
        self.shared: ShareResult | None = None
        self.progress_reports = 0
        self.silent = False
        self.webhooks = False
        self.local_writes = False

    @workflow.run
    async def run(self, input: StartRecordingInput) -> RecordingState:
        self.notifying = workflow.patched(NOTIFY_PATCH)
        self.webhooks = input.webhooks and workflow.patched(WEBHOOK_PATCH)
        self.local_writes = workflow.patched(LOCAL_WRITES_PATCH)
        try:
            await workflow.execute_activity_method(
                EgressActivities.start_egress,
                EgressStart(
                    recording_id=input.recording_id,
                    room_id=input.room_id,
                    kind=input.kind,
                    layout=input.layout,
                    encoding=input.encoding,
                    participants=input.participants,
                    owner=input.owner,
                ),
                start_to_close_timeout=timedelta(seconds=15),
                retry_policy=EGRESS_START,
            )
        except ActivityError as err:
            return await self._end_failed(
                ErrorCode.EGRESS_UNAVAILABLE, f"The recorder could not be started: {_reason(err)}"
            )

        in_time = await self._wait(
            lambda: self.started or self.failure is not None or self.stop_reason is not None, input.start_timeout_s
        )
        if self.failure is not None:
            return await self._end_failed(ErrorCode.RECORDER_FAILED, self.failure)
        if not in_time:
            await self._stop_egress()
            return await self._end_failed(
                ErrorCode.START_TIMEOUT, f"The recorder did not report 'started' within {input.start_timeout_s:g} s."
            )
        if not self.started:
            await self._stop_egress()
            return await self._end(
                RecordingStatus.ABORTED,
                ErrorCode.NOTHING_RECORDED,
                f"The recording was stopped ({self.stop_reason}) before the recorder started.",
            )

        self.state.start_date = self._now_ms()
        await self._set_status(RecordingStatus.ACTIVE)
        await self._chat("recording_started", self._owner())

        within_limit = await self._record()
        if self.silent:
            await self._stop_egress()
            return await self._end(
                RecordingStatus.ABORTED,
                ErrorCode.RECORDER_SILENT,
                f"The recorder stopped reporting progress for {input.recorder_silence_timeout_s:g} s; "
                "it was stopped and nothing it recorded was kept.",
            )
        if self.failure is not None:
            await self._stop_egress()
            return await self._end_failed(ErrorCode.RECORDER_FAILED, self.failure)
        if self.state.end_date is None:
            self.state.end_date = self._now_ms()
        if self.state.status != RecordingStatus.ENDING:
            await self._set_status(RecordingStatus.ENDING)
        if self.stopped_by is not None:  # Talk says nothing when the call ended without anyone stopping it
            await self._chat("recording_stopped", Actor(id=self.stopped_by))
        if not self.recorder_done and not await self._stop_egress() and self.stored is None:
            return await self._end_failed(
                ErrorCode.RECORDER_FAILED, "The recorder does not know this recording any more (404 on stop)."
            )

        await self._wait(lambda: self.stored is not None or self.failure is not None, input.upload_timeout_s)
        if self.stored is None:
            if self.failure is not None:
                return await self._end_failed(ErrorCode.RECORDER_FAILED, self.failure)
            return await self._end_failed(
                ErrorCode.UPLOAD_TIMEOUT, f"The recorder did not upload the file within {input.upload_timeout_s:g} s."
            )

        try:
            self.state.file = await workflow.execute_activity_method(
                FileActivities.finalize,
                FinalizeInput(
                    recording_id=input.recording_id,
                    room_id=input.room_id,
                    kind=input.kind,
                    staging_key=self.stored.staging_key,
                    extension=self.stored.extension,
                ),
                start_to_close_timeout=timedelta(hours=1),
                heartbeat_timeout=timedelta(seconds=20),  # it beats every 5 s: a dead worker is noticed soon
                retry_policy=FINALIZE,
            )
        except ActivityError as err:
            return await self._end_failed(ErrorCode.INVALID_FILE, _reason(err))

        status = RecordingStatus.COMPLETE if within_limit else RecordingStatus.LIMIT_REACHED
        if not self.notifying:
            return await self._end(status)
        await self._set_status(status)
        await self._offer_share_to_chat()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.state

    async def _record(self) -> bool:
        """Waits while recording; False when the maximum duration was reached.

        A recorder that reports progress and then falls silent for the silence timeout is given up
        (`self.silent`). Recorders that never report progress (Talk's) are not watched.
        """
        input = self.input

        def over() -> bool:
            return self.stop_reason is not None or self.recorder_done or self.failure is not None

        if not workflow.patched(SILENCE_PATCH):
            return await self._wait(over, input.max_duration_s)
        deadline = workflow.now() + timedelta(seconds=input.max_duration_s)
        while True:
            left = (deadline - workflow.now()).total_seconds()
            if left <= 0:
                return False
            reports_before = self.progress_reports
            if await self._wait(over, min(left, input.recorder_silence_timeout_s)):
                return True
            if reports_before > 0 and self.progress_reports == reports_before:
                self.silent = True
                return True

    async def _offer_share_to_chat(self) -> None:
        """DESIGN.md steps 6-7: tell the owner and moderators, then keep the offer open until it is taken."""
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
                workflow.logger.warning("sharing to the chat failed: %s", _reason(err))
            return
        if not await self._wait(lambda: self.offer_end is not None, input.share_offer_expiry_s):
            self.offer_end = "expired"
            await self._close_offer("expired")

    # recorder callbacks (signals)
    @workflow.signal
    def recorder_started(self, _: RecorderStarted) -> None:
        if self.state.status == RecordingStatus.STARTING:
            self.started = True

    @workflow.signal
    def recorder_stopped(self, stopped: RecorderStopped) -> None:
        self.recorder_done = True
        if stopped.actor is not None and self.stopped_by is None and self.state.status == RecordingStatus.ACTIVE:
            self.stopped_by = stopped.actor

    @workflow.signal
    def recorder_progress(self, _: RecorderProgress) -> None:
        self.progress_reports += 1

    @workflow.signal
    def recorder_failed(self, failed: RecorderFailed) -> None:
        if self.failure is None and self.state.status.in_progress:
            self.failure = failed.reason

    @workflow.signal
    def file_stored(self, stored: FileStored) -> None:
        """Superseded by the `store_file` update; kept so that recordings that got it still replay."""
        if self.stored is None:
            self.stored = stored

    @workflow.update
    def store_file(self, stored: FileStored) -> FileStored:
        """The recording's file: this upload, or the one stored before (a retried upload is not stored twice)."""
        if self.stored is None:
            self.stored = stored
        return self.stored

    @store_file.validator
    def _validate_store_file(self, stored: FileStored) -> None:
        if self.state.status == RecordingStatus.STARTING or (self.stored is None and not self.state.status.in_progress):
            raise ApplicationError(f"Recording is {self.state.status.value}", type="NotExpectingUpload")

    @workflow.signal
    def end(self, request: StopRequest) -> None:
        """The call ended or the room went away: stop whatever the status."""
        if self.stop_reason is None:
            self.stop_reason = request.reason

    # API
    @workflow.update
    async def wait_until_started(self) -> RecordingState:
        """Returns once the recording left `starting` and the catalog says so."""
        await workflow.wait_condition(lambda: self.projected != RecordingStatus.STARTING)
        return self.state

    @workflow.update
    async def stop(self, request: StopRequest) -> RecordingState:
        self.stop_reason = request.reason
        self.stopped_by = request.actor or self.input.owner or "callrec"
        self.state.status = RecordingStatus.ENDING
        self.state.end_date = self._now_ms()
        await self._project()
        return self.state

    @stop.validator
    def _validate_stop(self, request: StopRequest) -> None:
        if self.state.status != RecordingStatus.ACTIVE or self.stop_reason is not None:
            raise ApplicationError(f"Recording is {self.state.status.value}", type="RecordingNotActive")

    @workflow.update
    async def share_to_chat(self, request: ShareRequest) -> ShareResult:
        """Posts the recording to the room's chat; asking again returns the same message."""
        self.offer_end = "shared"
        if self.shared is None:
            try:
                self.shared = await self._share(request.actor)
            except ActivityError as err:
                raise ApplicationError(_reason(err), type="ShareFailed") from err
        return self.shared

    @share_to_chat.validator
    def _validate_share(self, request: ShareRequest) -> None:
        self._check_offer(request.timestamp, "shared")
        if request.file_id != notifications.file_id(self.input.recording_id):
            raise ApplicationError("No such file", type="WrongFile")

    @workflow.update
    async def dismiss(self, request: DismissRequest) -> None:
        if self.offer_end is None:
            self.offer_end = "dismissed"
            await self._close_offer("dismissed")

    @dismiss.validator
    def _validate_dismiss(self, request: DismissRequest) -> None:
        self._check_offer(request.timestamp, "dismissed")

    def _check_offer(self, timestamp: int, allowed_end: OfferEnd) -> None:
        if self.offer is None or self.offer.timestamp != timestamp:
            raise ApplicationError("No such notification", type="WrongFile")
        if self.offer_end not in (None, allowed_end):
            raise ApplicationError(f"The offer was {self.offer_end}", type="OfferClosed")

    @workflow.query
    def current(self) -> RecordingState:
        return self.state

    @workflow.query
    def call_recording(self) -> int:
        """Talk's recording status (0-5) of the room as this recording sees it."""
        return talk_status(self.state.status, self.input.kind)

    # helpers
    def _now_ms(self) -> int:
        return int(workflow.now().timestamp() * 1000)

    async def _wait(self, condition: Callable[[], bool], seconds: float) -> bool:
        try:
            await workflow.wait_condition(condition, timeout=timedelta(seconds=seconds))
        except TimeoutError:
            return False
        return True

    async def _set_status(self, status: RecordingStatus) -> None:
        self.state.status = status
        await self._project()

    async def _project(self) -> None:
        # Numbered by workflow time, so a run started by a Temporal reset (which replays an older state)
        # still outnumbers what the catalog got before the reset.
        self.state.seq = max(self.state.seq + 1, self._now_ms())
        snapshot = self.state.model_copy(deep=True)
        workflow.upsert_search_attributes([STATUS_ATTR.value_set(snapshot.status.value)])
        await self._write(CatalogActivities.project_recording, snapshot)
        self.projected = snapshot.status
        await self._emit(
            STATUS_EVENTS.get(snapshot.status, "recordingUpdated"), self._recording_data(snapshot), f"{snapshot.seq}"
        )

    def _recording_data(self, state: RecordingState) -> dict[str, object]:
        """A recording as webhook receivers get it: the REST API's fields."""
        file = state.file
        return {
            "recordingId": state.recording_id,
            "roomId": self.input.room_id,
            "roomName": self.input.room_name,
            "status": state.status.value,
            "startDate": state.start_date,
            "endDate": state.end_date,
            "duration": file.duration if file else None,
            "size": file.size if file else None,
            "filename": file.filename if file else None,
            "errorCode": state.error_code,
            "error": state.error,
            "details": state.details,
        }

    async def _emit(self, event: EventName, data: dict[str, object], key: str) -> None:
        """Hands the event to webhook delivery (its own workflow, so a receiver that is down delays nothing here)."""
        if not self.webhooks:
            return
        await workflow.execute_activity_method(
            WebhookActivities.emit_webhook,
            WebhookEvent(
                event=event,
                creation_date=self._now_ms(),
                data=data,
                idempotency_key=f"{self.input.recording_id}:{event}:{key}",
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=DURABLE,
        )

    async def _stop_egress(self) -> bool:
        """Best effort: a recorder that cannot be reached is not recording for us either.

        Returns False when the recorder answered that it does not know this recording (it will never upload).
        """
        try:
            await workflow.execute_activity_method(
                EgressActivities.stop_egress,
                EgressStop(recording_id=self.input.recording_id, room_id=self.input.room_id),
                start_to_close_timeout=timedelta(seconds=15),
                retry_policy=EGRESS_STOP,
            )
        except ActivityError as err:
            workflow.logger.warning("stopping egress failed: %s", _reason(err))
            cause = err.cause
            return not (isinstance(cause, ApplicationError) and cause.type == "EgressNotFound")
        return True

    def _owner(self) -> Actor:
        return Actor(id=self.input.owner or "callrec")

    async def _chat(self, message: str, actor: Actor) -> None:
        """A Talk system message in the room's chat (`audio_` prefixed for audio recordings)."""
        if not self.notifying:
            return
        if self.input.kind == RecordingKind.AUDIO and message != "recording_failed":
            message = f"audio_{message}"
        await self._write(
            NotifyActivities.post_chat,
            ChatPost(
                room_id=self.input.room_id,
                dedupe_key=f"{self.input.recording_id}:{message}",
                actor=actor,
                message=message,
            ),
        )

    async def _write(self, activity: Callable[[Any, Any], Awaitable[Any]], arg: Any) -> None:
        """A catalog write: a local activity (regular before LOCAL_WRITES_PATCH), retried until it lands."""
        timeout = timedelta(seconds=30)
        if self.local_writes:
            await workflow.execute_local_activity_method(
                activity, arg, start_to_close_timeout=timeout, retry_policy=DURABLE
            )
        else:
            await workflow.execute_activity_method(activity, arg, start_to_close_timeout=timeout, retry_policy=DURABLE)

    async def _notify(self, subject: str, message: str, file_id: int | None = None) -> NotificationInfo:
        """For the owner and the room's moderators."""
        info = await workflow.execute_activity_method(
            NotifyActivities.notify,
            NotificationPost(
                room_id=self.input.room_id,
                recording_id=self.input.recording_id,
                dedupe_key=f"{self.input.recording_id}:{subject}",
                user=self.input.owner,
                moderators=True,
                subject=subject,
                message=message,
                file_id=file_id,
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=DURABLE,
        )
        notification = {
            "notificationId": info.notification_id,
            "timestamp": info.timestamp,
            "subject": subject,
            "message": message,
            "user": self.input.owner,
            "roomId": self.input.room_id,
            "recordingId": self.input.recording_id,
            "fileId": file_id,
        }
        await self._emit("notificationCreated", notification, subject)
        return info

    async def _share(self, actor: Actor) -> ShareResult:
        message_id = await workflow.execute_activity_method(
            NotifyActivities.share_to_chat,
            ShareToChat(room_id=self.input.room_id, recording_id=self.input.recording_id, actor=actor),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=DURABLE,
        )
        shared = {"recordingId": self.input.recording_id, "roomId": self.input.room_id, "messageId": message_id}
        await self._emit("recordingShared", shared | {"actor": actor.model_dump()}, "chat")
        return ShareResult(message_id=message_id)

    async def _close_offer(self, end: OfferEnd) -> None:
        await workflow.execute_activity_method(
            NotifyActivities.close_offer,
            CloseOffer(recording_id=self.input.recording_id, end=end),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=DURABLE,
        )

    async def _end_failed(self, code: ErrorCode, details: str) -> RecordingState:
        return await self._end(RecordingStatus.FAILED, code, details)

    async def _end(
        self, status: RecordingStatus, code: ErrorCode | None = None, details: str | None = None
    ) -> RecordingState:
        if code is not None:
            self.state.error_code = int(code)
            self.state.error = code.name.lower()
            self.state.details = details
        if self.state.end_date is None:
            self.state.end_date = self._now_ms()
        was_recording = self.state.status in (RecordingStatus.ACTIVE, RecordingStatus.ENDING)
        await self._set_status(status)
        lost = status == RecordingStatus.FAILED or code == ErrorCode.RECORDER_SILENT  # not a call that just ended
        if self.notifying and lost:
            if was_recording:
                await self._chat("recording_failed", notifications.SYSTEM)
            await self._notify(
                notifications.RECORDING_FAILED,
                f"The recording of {self.input.room_name} failed: {details} "
                "Ask your administrators to check the recording server.",
            )
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.state
