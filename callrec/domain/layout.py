"""Recording layouts and encodings, and how a request's override merges with the room's config."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Layout(StrEnum):
    GRID = "grid"
    SPEAKER = "speaker"
    SINGLE_SPEAKER = "single-speaker"


class EncodingPreset(StrEnum):
    H264_720P_30 = "H264_720P_30"
    H264_720P_60 = "H264_720P_60"
    H264_1080P_30 = "H264_1080P_30"
    H264_1080P_60 = "H264_1080P_60"
    PORTRAIT_H264_720P_30 = "PORTRAIT_H264_720P_30"
    PORTRAIT_H264_720P_60 = "PORTRAIT_H264_720P_60"
    PORTRAIT_H264_1080P_30 = "PORTRAIT_H264_1080P_30"
    PORTRAIT_H264_1080P_60 = "PORTRAIT_H264_1080P_60"


class VideoEncoding(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    width: int = Field(ge=16, le=3840, multiple_of=2)
    height: int = Field(ge=16, le=3840, multiple_of=2)
    framerate: int = Field(ge=1, le=60)
    codec: Literal["H264_BASELINE", "H264_MAIN", "H264_HIGH"] = "H264_MAIN"
    bitrate: int = Field(default=3000, ge=50, le=50_000, description="kbps")
    key_frame_interval: float = Field(default=4.0, gt=0, le=60, alias="keyFrameInterval")


class AudioEncoding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    codec: Literal["AAC"] = "AAC"
    bitrate: int = Field(default=128, ge=16, le=512, description="kbps")
    frequency: Literal[44100, 48000] = 48000


class AdvancedEncoding(BaseModel):
    """LiveKit-style advanced encoding options."""

    model_config = ConfigDict(extra="forbid")

    video: VideoEncoding
    audio: AudioEncoding = AudioEncoding()


Encoding = EncodingPreset | AdvancedEncoding

_PRESETS: dict[EncodingPreset, tuple[int, int, int, int]] = {
    EncodingPreset.H264_720P_30: (1280, 720, 30, 3000),
    EncodingPreset.H264_720P_60: (1280, 720, 60, 4500),
    EncodingPreset.H264_1080P_30: (1920, 1080, 30, 4500),
    EncodingPreset.H264_1080P_60: (1920, 1080, 60, 6000),
    EncodingPreset.PORTRAIT_H264_720P_30: (720, 1280, 30, 3000),
    EncodingPreset.PORTRAIT_H264_720P_60: (720, 1280, 60, 4500),
    EncodingPreset.PORTRAIT_H264_1080P_30: (1080, 1920, 30, 4500),
    EncodingPreset.PORTRAIT_H264_1080P_60: (1080, 1920, 60, 6000),
}


@dataclass(frozen=True)
class RenderSpec:
    """Everything the recorder needs to encode: resolved from a preset or advanced options."""

    width: int
    height: int
    framerate: int
    video_bitrate_kbps: int
    keyframe_interval_s: float = 4.0
    h264_profile: str = "main"
    audio_bitrate_kbps: int = 128
    audio_sample_rate: int = 48000


def render_spec(encoding: Encoding) -> RenderSpec:
    if isinstance(encoding, AdvancedEncoding):
        v, a = encoding.video, encoding.audio
        return RenderSpec(
            width=v.width,
            height=v.height,
            framerate=v.framerate,
            video_bitrate_kbps=v.bitrate,
            keyframe_interval_s=v.key_frame_interval,
            h264_profile=v.codec.removeprefix("H264_").lower(),
            audio_bitrate_kbps=a.bitrate,
            audio_sample_rate=a.frequency,
        )
    width, height, fps, kbps = _PRESETS[EncodingPreset(encoding)]
    return RenderSpec(width=width, height=height, framerate=fps, video_bitrate_kbps=kbps)


AutoStart = Literal["off", "when_first_participant_joins", "when_moderator_joins"]


class RecordingConfig(BaseModel):
    """A room's recording settings."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    layout: Layout = Layout.GRID
    encoding: Encoding = EncodingPreset.H264_720P_30
    publicAccess: bool = Field(default=True, description="a recording's public secret lets anyone play it")
    autoShareToChat: bool = Field(
        default=False, description="post each stored recording to the room's chat, without waiting for a click"
    )
    autoStart: AutoStart = Field(default="off", description="start recording by itself when the call begins")


class RecordingOverride(BaseModel):
    """Per-recording override: each field set here wins over the room's config."""

    model_config = ConfigDict(extra="forbid")

    layout: Layout | None = None
    encoding: Encoding | None = None


def effective_config(room: RecordingConfig, override: RecordingOverride | None) -> RecordingConfig:
    if override is None:
        return room
    updates = {name: value for name in ("layout", "encoding") if (value := getattr(override, name)) is not None}
    return room.model_copy(update=updates)
