"""RecordingWorkflow's handlers of what its recorder reports: `started`, `stopped`, progress and `failed` (signals the
API sends on the recorder's callbacks), and the upload (`store_file`, an update: the API waits until the workflow took
the file). They only record what was reported; the phases in `recording.py` act on it."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from callrec.domain.recording import (
        FileStored,
        RecorderFailed,
        RecorderProgress,
        RecorderStarted,
        RecorderStopped,
        RecordingStatus,
    )
    from callrec.workflows.effects import RecordingEffects


class RecorderCallbacks(RecordingEffects):
    started: bool
    recorder_done: bool
    stopped_by: str | None
    failure: str | None
    progress_reports: int
    stored: FileStored | None
    awaiting_late_file: bool

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
    def recorder_progress(self, progress: RecorderProgress) -> None:
        self.progress_reports += 1
        if self.parts is not None and self.parts.progress(progress.part, progress.duration_s, progress.bytes):
            workflow.set_current_details(
                f"Recording on recorder {self.parts.recorder_id} (part {self.parts.number}): "
                f"{progress.duration_s:.0f} s, {progress.segments or 0} segments, {progress.bytes or 0:,} bytes stored"
            )

    @workflow.signal
    def recorder_failed(self, failed: RecorderFailed) -> None:
        if self.failure is None and self.state.status.in_progress:
            self.failure = failed.reason

    @workflow.update
    def store_file(self, stored: FileStored) -> FileStored:
        """The recording's file: this upload, or the one stored before (a retried upload is not stored twice)."""
        if self.stored is None:
            self.stored = stored
        return self.stored

    @store_file.validator
    def _validate_store_file(self, stored: FileStored) -> None:
        if stored.offered_until_ms is not None and self._now_ms() > stored.offered_until_ms:
            # No worker took it in time: the uploader got 503, dropped this staged copy, and uploads again.
            raise ApplicationError("The upload was offered too late", type="NotExpectingUpload")
        if self.stored is None and self.awaiting_late_file:
            return
        if self.state.status == RecordingStatus.STARTING or (self.stored is None and not self.state.status.in_progress):
            raise ApplicationError(f"Recording is {self.state.status.value}", type="NotExpectingUpload")
