"""A room's call recording status as Talk keeps it (`callRecording`), and the system messages its changes post.

0 none, 1 video, 2 audio, 3 starting video, 4 starting audio, 5 failed. Talk moves it at three points only: a start
the recording server accepted (3/4), and the recording server's callbacks (`started` 1/2, `stopped` 0, `failed` 5).
callrec adds the outcomes its workflow finds itself (a recorder that never reported, a lost one): 5 when it failed
while recording or starting, 0 otherwise. The durable recording keeps its own, richer status (Meet's).
"""

from __future__ import annotations

from pydantic import BaseModel

from callrec.domain.notifications import Actor
from callrec.domain.recording import RecordingKind, RecordingState

NONE, VIDEO, AUDIO, VIDEO_STARTING, AUDIO_STARTING, FAILED = range(6)
STARTING = (VIDEO_STARTING, AUDIO_STARTING)
RECORDING = (VIDEO, AUDIO)
IN_PROGRESS = (VIDEO, AUDIO, VIDEO_STARTING, AUDIO_STARTING)
IDLE = (NONE, FAILED)  # a start is accepted from these


def starting(kind: RecordingKind) -> int:
    return AUDIO_STARTING if kind == RecordingKind.AUDIO else VIDEO_STARTING


def recording(kind: RecordingKind) -> int:
    return AUDIO if kind == RecordingKind.AUDIO else VIDEO


def effective_consent(setting: int, room_value: int) -> int:
    """Whether joining a room's call needs consent to be recorded (Talk's `recordingConsent` of the room): the
    setting's 0 or 1, or with 2 (moderators choose) the room's own."""
    return room_value if setting == 2 else int(setting == 1)


def system_message(old: int, new: int, *, has_actor: bool) -> str | None:
    """The chat's system message for a change from `old` to `new`, as Talk posts them: started (from anything
    but recording), stopped (from recording, when someone stopped it: not when the call ended), failed (from
    recording; a start that fails posts nothing)."""
    if new in RECORDING and old not in RECORDING:
        return "audio_recording_started" if new == AUDIO else "recording_started"
    if new == NONE and old in RECORDING and has_actor:
        return "audio_recording_stopped" if old == AUDIO else "recording_stopped"
    if new == FAILED and old in RECORDING:
        return "recording_failed"
    return None


class StatusChange(BaseModel):
    """Move a room's status to `status`: only from one of `only_from` (None: from any), only while `recording_id`
    (when given) is the room's newest recording; the system message names `actor` (None: nobody stopped it)."""

    room_id: str
    status: int
    only_from: list[int] | None = None
    recording_id: str | None = None
    actor: Actor | None = None
    dedupe_key: str | None = None  # a retried activity posts its message once


class ProjectionWithRoom(BaseModel):
    """A recording's state for the catalog, and the change to its room's Talk status that goes with it."""

    state: RecordingState
    room: StatusChange
