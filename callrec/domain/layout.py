"""Recording layouts and encodings, and how a request's override merges with the room's config."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from callrec.domain.encoding import (
    PRESET_VALUES,
    AdvancedEncoding,
    AudioCodec,
    AudioEncoding,
    Encoding,
    EncodingOverride,
    EncodingPreset,
    VideoCodec,
    VideoEncoding,
    merge,
)

__all__ = [
    "AdvancedEncoding",
    "AudioCodec",
    "AudioEncoding",
    "Encoding",
    "EncodingPreset",
    "VideoCodec",
    "VideoEncoding",
]


class Layout(StrEnum):
    GRID = "grid"
    SPEAKER = "speaker"
    SINGLE_SPEAKER = "single-speaker"


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


# What the built-in recorder writes for each of Meet's codecs: H.264 in MP4 with AAC (Ogg/Opus for audio only).
BUILTIN_VIDEO_CODECS: dict[VideoCodec, VideoCodec] = {
    VideoCodec.DEFAULT_VC: VideoCodec.H264_MAIN,
    VideoCodec.H264_BASELINE: VideoCodec.H264_BASELINE,
    VideoCodec.H264_MAIN: VideoCodec.H264_MAIN,
    VideoCodec.H264_HIGH: VideoCodec.H264_HIGH,
}


OGG_OPUS_HZ = 48000  # an audio-only recording's Opus always runs at 48 kHz
# The built-in recorder writes fragments of at most this long (media.render.FRAGMENT_S), each from a keyframe:
# a longer key frame interval asked for is shortened to it.
BUILTIN_MAX_KEYFRAME_INTERVAL_S = 2.0


class UnsupportedEncoding(ValueError):
    """An encoding the recorder cannot produce (the field and why)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def builtin_encoding(encoding: Encoding, audio_only: bool = False) -> Encoding:
    """`encoding` as the built-in recorder produces it: presets as they are; options with what it writes.

    DEFAULT_VC is H.264 Main; audio is AAC in MP4 whatever codec was asked, or Opus at 48 kHz in an audio-only
    Ogg; pictures are 8-bit 4:2:0 (`depth` 24); a keyframe comes at least every 2 s. VP8 in a video recording
    raises UnsupportedEncoding: MP4 does not carry it."""
    if not isinstance(encoding, AdvancedEncoding):
        return encoding
    video, audio = encoding.video, encoding.audio
    if audio_only:
        audio = audio.model_copy(update={"codec": AudioCodec.OPUS, "frequency": OGG_OPUS_HZ})
        return encoding.model_copy(update={"audio": audio})
    if video.codec not in BUILTIN_VIDEO_CODECS:
        raise UnsupportedEncoding(
            "config.encoding.video.codec",
            f"The built-in recorder writes H.264 in MP4 and cannot encode {video.codec.value}: use "
            "DEFAULT_VC, H264_BASELINE, H264_MAIN or H264_HIGH (or LiveKit egress)",
        )
    return encoding.model_copy(
        update={
            "video": video.model_copy(
                update={
                    "codec": BUILTIN_VIDEO_CODECS[video.codec],
                    "depth": 24,
                    "key_frame_interval": min(video.key_frame_interval, BUILTIN_MAX_KEYFRAME_INTERVAL_S),
                }
            ),
            "audio": audio.model_copy(update={"codec": AudioCodec.AAC}),
        }
    )


def render_spec(encoding: Encoding) -> RenderSpec:
    if isinstance(encoding, AdvancedEncoding):
        v, a = encoding.video, encoding.audio
        codec = BUILTIN_VIDEO_CODECS.get(v.codec)
        if codec is None:
            raise UnsupportedEncoding("video.codec", f"the built-in recorder cannot encode {v.codec.value}")
        return RenderSpec(
            width=v.width,
            height=v.height,
            framerate=v.framerate,
            video_bitrate_kbps=v.bitrate,
            keyframe_interval_s=v.key_frame_interval,
            h264_profile=codec.removeprefix("H264_").lower(),
            audio_bitrate_kbps=a.bitrate,
            audio_sample_rate=a.frequency,
        )
    width, height, fps, kbps = PRESET_VALUES[EncodingPreset(encoding)]
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
    encoding: EncodingOverride | None = Field(
        default=None,
        description="a preset, or encoding options of which any part may be left out: what is left out keeps "
        "the room's value (a preset room counts as that preset's values)",
    )


def effective_config(room: RecordingConfig, override: RecordingOverride | None) -> RecordingConfig:
    if override is None:
        return room
    updates: dict[str, object] = {}
    if override.layout is not None:
        updates["layout"] = override.layout
    if override.encoding is not None:
        updates["encoding"] = merge(room.encoding, override.encoding)
    return room.model_copy(update=updates)
