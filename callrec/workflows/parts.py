"""The recorder side of a recording on the built-in recorders' pool, for RecordingWorkflow.

A recording is recorded in parts: part 0 on the recorder admission picked, and one more part each time a
recorder is lost (its `record_part` activity stops heartbeating, or never gets picked up) on another recorder
with room. Each part's activity runs on its recorder's own task queue for as long as it records; `stop` asks
that recorder to finish and waits for the activity, which returns once the last segment is stored.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from callrec.activities.pool import PoolActivities
    from callrec.domain.pool import (
        RECORD_PART,
        STOP_PART,
        AssembleInput,
        Assignment,
        AssignRequest,
        Gap,
        PartResult,
        RecordInput,
        RecordStop,
    )
    from callrec.domain.recording import FileStored, RecordingKind, StartRecordingInput
    from callrec.workflows.options import execute

# A recorder that has not picked up its part within this long, or stops heartbeating for this long, is lost.
PICKUP_TIMEOUT = timedelta(seconds=10)
HEARTBEAT_TIMEOUT = timedelta(seconds=8)
# How many times a recording moves to another recorder before it gives up.
MAX_PARTS = 20
ONE_TRY = RetryPolicy(maximum_attempts=1)
STOP_TRIES = RetryPolicy(maximum_attempts=3, initial_interval=timedelta(seconds=1))


def _reason(err: BaseException) -> str:
    cause = err.cause if isinstance(err, ActivityError) else err
    while isinstance(cause, ActivityError | ApplicationError) and cause.cause is not None:
        if isinstance(cause, ApplicationError):
            break
        cause = cause.cause
    return str(cause or err)


class RecorderParts:
    def __init__(self, input: StartRecordingInput) -> None:
        assert input.recorder is not None
        self.input = input
        self.assignment: Assignment = input.recorder
        self.number = 0
        self.handle: workflow.ActivityHandle[PartResult] | None = None
        self.lost: list[str] = []  # recorders this recording lost, in order
        self.last_failure = ""
        # The recording's latest progress report (media seconds and bytes stored so far, all parts): a part that
        # takes over counts on from there.
        self.stored_s = 0.0
        self.stored_bytes = 0

    @property
    def recorder_id(self) -> str:
        return self.assignment.recorder_id

    async def admit(self) -> bool:
        """The recorder this recording holds a slot on (the API reserved one; a run started over by a reset takes
        one again); False when no recorder has room."""
        request = AssignRequest(recording_id=self.input.recording_id, room_id=self.input.room_id, cost=self.input.cost)
        found = await execute(PoolActivities.assign_recorder, request)
        if found is None:
            return False
        self.assignment = found
        return True

    def start(self) -> None:
        input = self.input
        self.handle = workflow.start_activity(
            RECORD_PART,
            RecordInput(
                recording_id=input.recording_id,
                room_id=input.room_id,
                part=self.number,
                audio_only=input.kind == RecordingKind.AUDIO,
                layout=input.layout,
                encoding=input.encoding,
                participants=input.participants,
                owner=input.owner,
                media_before_s=self.stored_s,
                bytes_before=self.stored_bytes,
            ),
            result_type=PartResult,
            task_queue=self.assignment.task_queue,
            schedule_to_start_timeout=PICKUP_TIMEOUT,
            start_to_close_timeout=timedelta(seconds=input.max_duration_s + 3600),
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=ONE_TRY,
            summary=f"part {self.number} on recorder {self.recorder_id}",
        )

    def progress(self, part: int | None, media_s: float | None, stored_bytes: int | None) -> bool:
        """Takes a progress report of the current part; False for one of an earlier part (late)."""
        if part != self.number or media_s is None or stored_bytes is None:
            return False
        self.stored_s, self.stored_bytes = media_s, stored_bytes
        return True

    @property
    def ended(self) -> bool:
        """The current part's activity is over (finished after a stop, or its recorder was lost or failed)."""
        return self.handle is not None and self.handle.done()

    def failure(self) -> str:
        """Why the current part ended without being stopped."""
        assert self.handle is not None and self.handle.done()
        error = self.handle.exception()
        if error is None:
            return f"recorder {self.recorder_id} ended its part unasked"
        return f"recorder {self.recorder_id}: {_reason(error)}"

    async def take_over(self) -> bool:
        """Continues on another recorder with room: False when there is none (or too many were lost)."""
        self.last_failure = self.failure()
        self.lost.append(self.recorder_id)
        workflow.logger.warning("lost %s; looking for another recorder", self.last_failure)
        if len(self.lost) >= MAX_PARTS:
            return False
        request = AssignRequest(
            recording_id=self.input.recording_id,
            room_id=self.input.room_id,
            cost=self.input.cost,
            exclude=sorted(set(self.lost)),
        )
        found = await execute(PoolActivities.assign_recorder, request)
        if found is None:
            return False
        self.assignment = found
        self.number += 1
        self.start()
        return True

    async def stop(self) -> None:
        """Asks the recorder to finish, then waits until the part's last segment is stored (or it is lost)."""
        if self.handle is None:
            return
        if not self.handle.done():
            try:
                await workflow.execute_activity(
                    STOP_PART,
                    RecordStop(recording_id=self.input.recording_id),
                    task_queue=self.assignment.task_queue,
                    schedule_to_start_timeout=PICKUP_TIMEOUT,
                    start_to_close_timeout=timedelta(seconds=15),
                    retry_policy=STOP_TRIES,
                )
            except ActivityError as err:
                workflow.logger.warning("stopping part %d failed: %s", self.number, _reason(err))
        try:
            await self.handle
        except ActivityError as err:
            workflow.logger.warning("part %d ended with: %s", self.number, _reason(err))

    async def release(self) -> None:
        await execute(PoolActivities.release_recorder, RecordStop(recording_id=self.input.recording_id))

    async def assemble(self) -> tuple[FileStored, list[Gap]]:
        """The parts joined into one file in the staging area, as an upload would have left it, and its gaps."""
        audio_only = self.input.kind == RecordingKind.AUDIO
        request = AssembleInput(recording_id=self.input.recording_id, audio_only=audio_only)
        joined = await execute(
            PoolActivities.assemble,
            request,
            summary="Join the recorded parts",
            give_up_after=timedelta(seconds=self.input.store_timeout_s),
        )
        stored = FileStored(
            staging_key=joined.staging_key, size=joined.size, sha256=joined.sha256, extension=joined.extension
        )
        return stored, joined.gaps
