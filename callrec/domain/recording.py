"""The recording workflow's typed contract: inputs, signals, updates, activity payloads and state."""

from __future__ import annotations

import re
from enum import IntEnum, StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from temporalio.common import SearchAttributeKey

from callrec.domain.layout import Encoding, Layout
from callrec.domain.notifications import Actor
from callrec.domain.participants import Participant
from callrec.domain.pool import Assignment, Gap

ROOM_ID_ATTR = SearchAttributeKey.for_keyword("RoomId")
STATUS_ATTR = SearchAttributeKey.for_keyword("RecordingStatus")
# What an operator filters the Temporal UI by besides: the room's name, the layout, who records, why it failed.
ROOM_NAME_ATTR = SearchAttributeKey.for_keyword("RoomName")
LAYOUT_ATTR = SearchAttributeKey.for_keyword("Layout")
EGRESS_ATTR = SearchAttributeKey.for_keyword("Egress")
ERROR_CODE_ATTR = SearchAttributeKey.for_keyword("ErrorCode")
SEARCH_ATTRIBUTES = (ROOM_ID_ATTR, STATUS_ATTR, ROOM_NAME_ATTR, LAYOUT_ATTR, EGRESS_ATTR, ERROR_CODE_ATTR)

RECORDING_ID = re.compile(r"^(?P<room>[a-z0-9][a-z0-9-]*)--EG_(?P<egress>[A-Za-z0-9]+)--(?P<uid>[A-Za-z0-9]+)$")


class RecordingStatus(StrEnum):
    STARTING = "starting"
    ACTIVE = "active"
    ENDING = "ending"
    COMPLETE = "complete"
    FAILED = "failed"
    ABORTED = "aborted"
    LIMIT_REACHED = "limit_reached"

    @property
    def in_progress(self) -> bool:
        return self in (RecordingStatus.STARTING, RecordingStatus.ACTIVE, RecordingStatus.ENDING)


class RecordingKind(StrEnum):
    VIDEO = "video"
    AUDIO = "audio"


# What each kind of recording is stored as when the upload does not say (callrec's own recorder).
EXTENSIONS = {RecordingKind.VIDEO: "mp4", RecordingKind.AUDIO: "ogg"}


def talk_status(status: RecordingStatus, kind: RecordingKind) -> int:
    """Talk's call recording status for a room whose latest recording is this: 0 none, 1 video, 2 audio,
    3 starting video, 4 starting audio, 5 failed (a new start behaves as from 0)."""
    audio = kind == RecordingKind.AUDIO
    if status == RecordingStatus.STARTING:
        return 4 if audio else 3
    if status.in_progress:
        return 2 if audio else 1
    return 5 if status == RecordingStatus.FAILED else 0


class ErrorCode(IntEnum):
    """`errorCode` of a failed or aborted recording; `error` carries the name in lowercase."""

    RECORDER_FAILED = 500
    EGRESS_UNAVAILABLE = 503
    START_TIMEOUT = 504
    UPLOAD_TIMEOUT = 508
    INVALID_FILE = 422
    NOTHING_RECORDED = 410
    RECORDER_SILENT = 408
    RECORDER_LOST = 502  # the pool: a recorder was lost and no other one could go on (what was stored is kept)
    STORE_UNAVAILABLE = 507  # the object store did not take the file within the store timeout (the upload is kept)
    OPERATOR_CANCELLED = 499  # an operator cancelled its workflow (Temporal UI): stopped, what was recorded is kept


class StartRecordingInput(BaseModel):
    recording_id: str
    room_id: str
    room_name: str
    kind: RecordingKind = RecordingKind.VIDEO
    layout: Layout
    encoding: Encoding
    participants: list[Participant]
    start_timeout_s: float
    upload_timeout_s: float
    max_duration_s: float
    # How long storing may take while the object store is down before the recording fails `store_unavailable`.
    store_timeout_s: float = 6 * 3600.0
    owner: str | None = None  # who started it (member name, user id, or "api-key"); gets the notifications
    auto_share_to_chat: bool = False
    share_offer_expiry_s: float = 7 * 24 * 3600.0
    recorder_silence_timeout_s: float = 60.0
    webhooks: bool = False  # whether any webhook endpoint was configured when it started
    # After the upload timeout the recording is failed, but a late upload still completes it within this long.
    late_upload_window_s: float = 0.0
    # The built-in recorders' pool: the recorder admission picked (None: another egress records), and the cost.
    recorder: Assignment | None = None
    cost: float = 0.0
    # The egress that records it (None: started before this was recorded). Talk recording servers take no
    # encoding: the recording then shows what its file holds once stored.
    egress: Literal["builtin", "talk", "livekit"] | None = None
    # A file a recording server uploaded with no recording to take it (Talk stores it for its owner all the same): the
    # recording begins with the file, which is validated, stored and offered as any other.
    uploaded: bool = False


class RecorderStarted(BaseModel):
    pass


class RecorderStopped(BaseModel):
    actor: str | None = None  # who stopped it, when the recording server says


class RecorderProgress(BaseModel):
    """Sent by recorders that report progress (callrec's own does); one that stops sending them is given up."""

    duration_s: float | None = None
    bytes: int | None = None
    segments: int | None = None  # a pool recorder's segments stored so far, of its current part
    part: int | None = None


class RecorderFailed(BaseModel):
    reason: str = "The recording server reported a failure."


class StopRequest(BaseModel):
    # no_worker: the API gave up waiting for a worker to take the start (it answered 503): abort, record nothing
    reason: Literal["requested", "call_ended", "room_deleted", "no_worker"] = "requested"
    actor: str | None = None  # who asked (a member's name, a user id); None: the recording's owner
    actor_type: str = "users"  # Talk's actor type of `actor`: users or guests
    actor_name: str | None = None  # its display name, when known


class FileStored(BaseModel):
    staging_key: str
    size: int
    sha256: str
    extension: str | None = None  # as uploaded (mp4, ogg, ogv, webm, mkv); None: by kind
    # The uploader is told 503 (and retries) when no worker takes the file by then: the workflow refuses it after.
    offered_until_ms: int | None = None


class EgressStart(BaseModel):
    recording_id: str
    room_id: str
    kind: RecordingKind
    layout: Layout
    encoding: Encoding
    participants: list[Participant]
    owner: str | None = None


class EgressStop(BaseModel):
    recording_id: str
    room_id: str
    actor: Actor | None = None  # who asked to stop (Talk's `stop.actor`); None: the call ended


class FinalizeInput(BaseModel):
    recording_id: str
    room_id: str
    kind: RecordingKind
    staging_key: str
    extension: str | None = None


class FinalizeResult(BaseModel):
    object_key: str
    filename: str
    size: int
    sha256: str
    duration: float
    width: int | None
    height: int | None
    video_codec: str | None
    audio_codec: str | None
    framerate: float | None = None
    video_profile: str | None = None


class RecordingState(BaseModel):
    """What the workflow knows; also what the catalog projection is built from."""

    recording_id: str
    seq: int = 0
    status: RecordingStatus = RecordingStatus.STARTING
    start_date: int | None = None
    end_date: int | None = None
    error_code: int | None = None
    error: str | None = None
    details: str | None = None
    file: FinalizeResult | None = None
    encoding_used: dict[str, Any] | None = None  # what the stored file holds, when the egress took no encoding
    gaps: list[Gap] = []  # where a recorder was lost and another took over: media time and wall time missing


class Recording(BaseModel):
    """A recording as every front door sees it: the one object that each API's view function turns into JSON.

    Built from the catalog row (`Recording.model_validate(row)`) or, inside the workflow, from its state.
    """

    model_config = ConfigDict(from_attributes=True)

    recording_id: str
    room_id: str
    room_name: str
    status: RecordingStatus
    kind: RecordingKind = RecordingKind.VIDEO
    layout: str | None = None
    encoding: Any = None
    filename: str | None = None
    owner: str | None = None
    start_date: int | None = None
    end_date: int | None = None
    duration: float | None = None
    size: int | None = None
    error_code: int | None = None
    error: str | None = None
    details: str | None = None
    object_key: str | None = None
    egress_id: str | None = None
    creation_date: int | None = None
    gaps: list[Gap] = []

    @classmethod
    def of_workflow(cls, input: StartRecordingInput, state: RecordingState) -> Recording:
        """The recording as its workflow knows it: what it was started with, and its state."""
        file = state.file
        return cls(
            recording_id=state.recording_id,
            room_id=input.room_id,
            room_name=input.room_name,
            status=state.status,
            kind=input.kind,
            layout=input.layout.value,
            encoding=state.encoding_used
            or input.model_dump(mode="json", by_alias=True, include={"encoding"})["encoding"],
            filename=file.filename if file else None,
            owner=input.owner,
            start_date=state.start_date,
            end_date=state.end_date,
            duration=file.duration if file else None,
            size=file.size if file else None,
            error_code=state.error_code,
            error=state.error,
            details=state.details,
            object_key=file.object_key if file else None,
            gaps=state.gaps,
        )
