"""RecordingWorkflow: one durable workflow per recording, id = recording id.

start egress -> wait `started` -> active -> wait stop / recorder stopped / failed / max duration
-> ending: stop egress, wait for the upload -> validate and store -> complete (or limit_reached),
every wait bounded, every failure path ending in a terminal status with a reason.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from callrec.activities.catalog import CatalogActivities
    from callrec.activities.egress import EgressActivities
    from callrec.activities.files import FileActivities
    from callrec.domain.recording import (
        STATUS_ATTR,
        EgressStart,
        EgressStop,
        ErrorCode,
        FileStored,
        FinalizeInput,
        RecorderFailed,
        RecorderStarted,
        RecorderStopped,
        RecordingState,
        RecordingStatus,
        StartRecordingInput,
        StopRequest,
    )

# The catalog and the object store come back eventually: retry for as long as it takes.
DURABLE = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
EGRESS_START = RetryPolicy(maximum_attempts=3, non_retryable_error_types=["EgressRejected"])
EGRESS_STOP = RetryPolicy(maximum_attempts=5, non_retryable_error_types=["EgressRejected", "EgressNotFound"])
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
        self.stored: FileStored | None = None

    @workflow.run
    async def run(self, input: StartRecordingInput) -> RecordingState:
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

        within_limit = await self._wait(
            lambda: self.stop_reason is not None or self.recorder_done or self.failure is not None,
            input.max_duration_s,
        )
        if self.failure is not None:
            await self._stop_egress()
            return await self._end_failed(ErrorCode.RECORDER_FAILED, self.failure)
        if self.state.end_date is None:
            self.state.end_date = self._now_ms()
        if self.state.status != RecordingStatus.ENDING:
            await self._set_status(RecordingStatus.ENDING)
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
                ),
                start_to_close_timeout=timedelta(hours=1),
                heartbeat_timeout=timedelta(seconds=60),
                retry_policy=FINALIZE,
            )
        except ActivityError as err:
            return await self._end_failed(ErrorCode.INVALID_FILE, _reason(err))

        # Notifications and the share-to-chat offer (DESIGN.md steps 6-7) go here.
        return await self._end(RecordingStatus.COMPLETE if within_limit else RecordingStatus.LIMIT_REACHED)

    # recorder callbacks (signals)
    @workflow.signal
    def recorder_started(self, _: RecorderStarted) -> None:
        if self.state.status == RecordingStatus.STARTING:
            self.started = True

    @workflow.signal
    def recorder_stopped(self, _: RecorderStopped) -> None:
        self.recorder_done = True

    @workflow.signal
    def recorder_failed(self, failed: RecorderFailed) -> None:
        if self.failure is None and self.state.status.in_progress:
            self.failure = failed.reason

    @workflow.signal
    def file_stored(self, stored: FileStored) -> None:
        if self.stored is None:
            self.stored = stored

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
        self.state.seq += 1
        snapshot = self.state.model_copy(deep=True)
        workflow.upsert_search_attributes([STATUS_ATTR.value_set(snapshot.status.value)])
        await workflow.execute_activity_method(
            CatalogActivities.project_recording,
            snapshot,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=DURABLE,
        )
        self.projected = snapshot.status

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
        await self._set_status(status)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.state
