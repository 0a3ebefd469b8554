"""What can go wrong with a recording, as the front doors map it: one exception type per condition."""

from __future__ import annotations

from callrec.domain.errors import ServiceUnavailable

__all__ = [
    "EncodingNotSupported",
    "NoParticipants",
    "NoRecorderCapacity",
    "NotExpectingFile",
    "OfferClosed",
    "RecordingDisabled",
    "RecordingError",
    "RecordingInProgress",
    "RecordingNotActive",
    "RecordingNotFound",
    "RoomAlreadyRecording",
    "RoomNotFound",
    "ServiceUnavailable",
    "ShareFailed",
    "StartFailed",
    "StoreUnavailable",
    "WorkerUnavailable",
]


class RecordingError(Exception):
    """Base of the service's refusals; `str(exc)` is a sentence a person can act on."""


class RoomNotFound(RecordingError):
    def __init__(self, room_id: str) -> None:
        super().__init__(f"Room '{room_id}' does not exist")
        self.room_id = room_id


class RecordingNotFound(RecordingError):
    def __init__(self, recording_id: str) -> None:
        super().__init__(f"Recording '{recording_id}' not found")
        self.recording_id = recording_id


class RecordingDisabled(RecordingError):
    def __init__(self, room_id: str) -> None:
        super().__init__(f"Recording is disabled for room '{room_id}'")
        self.room_id = room_id


class NoParticipants(RecordingError):
    def __init__(self, room_id: str) -> None:
        super().__init__(f"Room '{room_id}' has no participants")
        self.room_id = room_id


class ConsentMissing(RecordingError):
    """The room needs consent to be recorded, and participants of its call have not given it."""

    def __init__(self, room_id: str, names: list[str]) -> None:
        listed = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        super().__init__(
            f"Room '{room_id}' requires consent to be recorded, and {listed} did not consent when joining the call"
        )
        self.room_id = room_id
        self.names = names


class RoomAlreadyRecording(RecordingError):
    def __init__(self, room_id: str) -> None:
        super().__init__(f"Room '{room_id}' is already being recorded")
        self.room_id = room_id


class StartFailed(RecordingError):
    """The recorder did not report `started` (the workflow ends the recording by itself)."""

    def __init__(self, room_id: str, reason: str) -> None:
        super().__init__(f"Recording in room '{room_id}' could not start: {reason}")
        self.room_id = room_id
        self.reason = reason


class StartRefused(StartFailed):
    """The recorder did not take the start (unreachable, or it refused it): nothing was started."""


class RecordingNotActive(RecordingError):
    """A stop of a recording that is not `active`, worded as OpenVidu Meet words it: still starting (the stop still
    ends it), or already stopped (`ending` or finished)."""

    def __init__(self, recording_id: str, status: str) -> None:
        if status == "starting":
            message = f"Recording '{recording_id}' cannot be stopped while starting"
        else:
            message = f"Recording '{recording_id}' is already stopped"
        super().__init__(message)
        self.recording_id = recording_id
        self.status = status


class RecordingInProgress(RecordingError):
    """It cannot be deleted before it is finished (Meet's wording: not stopped yet, also while `ending`)."""

    def __init__(self, recording_id: str, status: str) -> None:
        super().__init__(f"Recording '{recording_id}' is not stopped yet")
        self.recording_id = recording_id
        self.status = status


class NotExpectingFile(RecordingError):
    """The recording takes no upload now (still starting, or over without waiting for one)."""


class ShareFailed(RecordingError):
    """Posting the recording to the chat failed."""


class OfferClosed(RecordingError):
    """The share offer is not open (another file, already shared or dismissed, or the workflow has ended)."""


class StoreUnavailable(ServiceUnavailable):
    """The object store did not answer."""


class WorkerUnavailable(ServiceUnavailable):
    """Temporal answered, but no worker took the recording's update in time (none is polling the task queue).

    `str(exc)` names the recording and says what became of the request, so a client can find it again.
    """

    def __init__(self, recording_id: str, message: str) -> None:
        super().__init__(message)
        self.recording_id = recording_id


class NoRecorderCapacity(ServiceUnavailable):
    """No live recorder of the pool has room for the recording (or the one holding the room's publishers is full);
    nothing was started."""

    code = "no_recorder_capacity"
    retry_after_s = 10

    def __init__(self, room_id: str, cost: float, largest: float | None = None) -> None:
        """`largest`: the capacity of the largest recorder taking recordings, when even it is below `cost`."""
        if largest is not None:
            message = (
                f"No recorder can take a recording of room '{room_id}': it costs {cost:g} and the largest recorder "
                f"has a capacity of {largest:g} (CALLREC_RECORDER_CAPACITY); nothing was started. Choose a smaller "
                "encoding, or run recorders with more capacity."
            )
        else:
            message = (
                f"No recorder has capacity for a recording of room '{room_id}' (cost {cost:g}); nothing was started. "
                "Try again later, or add recorders (GET /api/v1/recorders shows their load)."
            )
        super().__init__(message)
        self.room_id = room_id


class EncodingNotSupported(RecordingError):
    """The effective encoding asks for something the configured recorder cannot produce (422, naming the field)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
