"""The recorder pool's contract: what a recording costs, who may take it, and the payloads between the workflow,
the catalog and the recorders' own task queues.

Cost unit: one 720p30 video recording of up to `FREE_TILES` tiles is 1.0. A video recording costs its pixel rate
relative to that (resolution x frame rate), plus `TILE_COST` for each tile beyond `FREE_TILES` (compositing); an
audio-only one costs `AUDIO_COST`. A recorder's capacity is in the same unit: by default `RECORDINGS_PER_CORE` per
core, the figure `make bench` measures (`recorder_capacity`); `CALLREC_RECORDER_CAPACITY` overrides it.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from callrec.domain.layout import Encoding, Layout, RenderSpec, render_spec
from callrec.domain.participants import Participant

REFERENCE_PIXEL_RATE = 1280 * 720 * 30
FREE_TILES = 4
TILE_COST = 0.05
AUDIO_COST = 0.1
# 720p30 grid recordings (4 moving feeds) one core holds in real time: `make bench` (bench/pool.py
# `recorder_capacity`) measured 2 on 2 cores on a quiet machine, 1 with other tests running beside it (see
# docs/production.md). The default budget is this per core; lower CALLREC_RECORDER_CAPACITY on a shared machine.
RECORDINGS_PER_CORE = 1.0
# A recorder that has not registered for this long is offline: nothing new goes to it.
LIVE_WITHIN_S = 15.0
REGISTER_EVERY_S = 5.0
# The activities on a recorder's own task queue (called by name: the workflow does not import the recorder).
RECORD_PART = "record_part"
STOP_PART = "stop_part"


def recording_cost(spec: RenderSpec, tiles: int, *, audio_only: bool) -> float:
    if audio_only:
        return AUDIO_COST
    pixels = spec.width * spec.height * spec.framerate / REFERENCE_PIXEL_RATE
    return round(pixels + TILE_COST * max(0, tiles - FREE_TILES), 3)


def cost_of(encoding: Encoding, participants: int, *, audio_only: bool) -> float:
    return recording_cost(render_spec(encoding), participants, audio_only=audio_only)


def default_capacity(cores: int) -> float:
    return max(1.0, cores * RECORDINGS_PER_CORE)


def task_queue_of(recorder_id: str) -> str:
    """The worker-specific task queue of a recorder: its recordings' activities go there."""
    return f"callrec-recorder-{recorder_id}"


class RecorderState(StrEnum):
    ACTIVE = "active"  # takes new recordings
    DRAINING = "draining"  # finishes its recordings, takes no new ones
    OFFLINE = "offline"  # not heard from within LIVE_WITHIN_S (shown only, never stored)


class RecorderReport(BaseModel):
    """A recorder's registration, repeated every REGISTER_EVERY_S (a signed `recorder` callback)."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$")
    url: str = Field(max_length=500)  # where the API reaches its HTTP side (WHIP)
    taskQueue: str = Field(max_length=200)
    capacity: float = Field(gt=0, le=10_000)
    state: RecorderState = RecorderState.ACTIVE
    recordings: int = Field(default=0, ge=0)
    rooms: list[str] = Field(default=[], max_length=1000)  # rooms whose publishers it holds
    sentAt: int = 0  # ms since the epoch: a registration is taken only while fresh (it keeps no replay random)


class Assignment(BaseModel):
    """A recorder picked for a recording (its slot is reserved in the catalog)."""

    recorder_id: str
    task_queue: str


class AssignRequest(BaseModel):
    recording_id: str
    room_id: str
    cost: float
    exclude: list[str] = []  # recorders that failed this recording


class RecordInput(BaseModel):
    """The `record` activity on a recorder's task queue: one part of a recording (part 0, then one per takeover)."""

    recording_id: str
    room_id: str
    part: int
    audio_only: bool
    layout: Layout
    encoding: Encoding
    participants: list[Participant]
    backend: str | None = None  # where the recorder reports `started` / `progress` / `failed` (its default: None)
    owner: str | None = None  # who started the recording: the actor of its `started`
    # what the parts before it stored, so that its progress reports count the whole recording
    media_before_s: float = 0.0
    bytes_before: int = 0


class RecordStop(BaseModel):
    recording_id: str


class PartResult(BaseModel):
    """What a part left in the object store."""

    segments: int
    bytes: int
    media_s: float


class Gap(BaseModel):
    offset_s: float  # where in the stored file (its media time)
    duration_s: float  # wall-clock time missing there


class AssembleInput(BaseModel):
    recording_id: str
    audio_only: bool


class Assembled(BaseModel):
    staging_key: str
    size: int
    sha256: str
    extension: str
    duration_s: float
    gaps: list[Gap]


def segments_prefix(recording_id: str) -> str:
    """Where a recording's parts go while it records (its staging prefix, so reconcile keeps them until it ends)."""
    return f"staging/{recording_id}/parts/"


def part_prefix(recording_id: str, part: int, run_id: str) -> str:
    """A part's objects: its chunks and its manifest. Parts are joined in the order of their manifests' origins."""
    return f"{segments_prefix(recording_id)}{part:04d}-{run_id}/"
