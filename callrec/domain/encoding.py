"""Recording encodings as OpenVidu Meet 3.8 has them: a preset name, or the full options object.

- Presets: Meet's `MeetRecordingEncodingPreset` (landscape and `PORTRAIT_` ones), with LiveKit's values.
- Options: `video {width, height, framerate, codec, bitrate, keyFrameInterval, depth}` and
  `audio {codec, bitrate, frequency}` with Meet's codec sets (`MeetRecordingVideoCodec`, `MeetRecordingAudioCodec`).
- Wire messages for each refusal are Meet's (its room schema's `encodingValidator`); the bounds callrec adds on top
  of Meet's "positive" (sizes a recorder can encode, frame rates up to 60, ...) keep pydantic's own wording.
- A start's override may carry part of the options (`{"video": {"bitrate": 2000}}`): `merge` lays it field by field
  over the room's encoding (a preset counts as its full values). Meet refuses such partial objects (422); callrec
  takes them, which changes nothing for a client that always sends the whole object.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    field_validator,
)
from pydantic_core import PydanticCustomError

from callrec.domain.zod_wording import enum_message, json_type


class EncodingPreset(StrEnum):
    H264_720P_30 = "H264_720P_30"
    H264_720P_60 = "H264_720P_60"
    H264_1080P_30 = "H264_1080P_30"
    H264_1080P_60 = "H264_1080P_60"
    PORTRAIT_H264_720P_30 = "PORTRAIT_H264_720P_30"
    PORTRAIT_H264_720P_60 = "PORTRAIT_H264_720P_60"
    PORTRAIT_H264_1080P_30 = "PORTRAIT_H264_1080P_30"
    PORTRAIT_H264_1080P_60 = "PORTRAIT_H264_1080P_60"


class VideoCodec(StrEnum):
    DEFAULT_VC = "DEFAULT_VC"
    H264_BASELINE = "H264_BASELINE"
    H264_MAIN = "H264_MAIN"
    H264_HIGH = "H264_HIGH"
    VP8 = "VP8"


class AudioCodec(StrEnum):
    DEFAULT_AC = "DEFAULT_AC"
    OPUS = "OPUS"
    AAC = "AAC"
    AC_MP3 = "AC_MP3"


# (width, height, framerate, video kbps) of each preset: LiveKit's EncodingOptionsPreset values.
PRESET_VALUES: dict[EncodingPreset, tuple[int, int, int, int]] = {
    EncodingPreset.H264_720P_30: (1280, 720, 30, 3000),
    EncodingPreset.H264_720P_60: (1280, 720, 60, 4500),
    EncodingPreset.H264_1080P_30: (1920, 1080, 30, 4500),
    EncodingPreset.H264_1080P_60: (1920, 1080, 60, 6000),
    EncodingPreset.PORTRAIT_H264_720P_30: (720, 1280, 30, 3000),
    EncodingPreset.PORTRAIT_H264_720P_60: (720, 1280, 60, 4500),
    EncodingPreset.PORTRAIT_H264_1080P_30: (1080, 1920, 30, 4500),
    EncodingPreset.PORTRAIT_H264_1080P_60: (1080, 1920, 60, 6000),
}
DEFAULT_KEYFRAME_INTERVAL_S = 4.0
DEFAULT_DEPTH = 24
DEFAULT_AUDIO_KBPS = 128
DEFAULT_AUDIO_HZ = 48000
# callrec's bound on top of Meet's "positive": the rates every encoder it drives (AAC, Opus via resampling) takes
SAMPLE_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)


def _positive(label: str, value: Any) -> Any:
    """Meet's `z.number().positive(...)`: a JSON number (not a boolean, not a numeric string) above 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError("invalid_type", "Expected number, received {kind}", {"kind": json_type(value)})
    if value <= 0:
        raise PydanticCustomError("too_small", "{label} must be a positive number", {"label": label})
    return value


class _Checked(BaseModel):
    """Meet's per-field messages: the label of each numeric field and the codec set."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    LABEL: ClassVar[str] = ""
    CODECS: ClassVar[type[StrEnum]]

    @field_validator("*", mode="before")
    @classmethod
    def _meet_rules(cls, value: Any, info: Any) -> Any:
        if value is None:
            return value  # a part left out (patches); required fields fail on their own
        name = info.field_name
        if name == "codec":
            if not isinstance(value, str) or value not in {member.value for member in cls.CODECS}:
                raise PydanticCustomError(
                    "invalid_enum_value", enum_message((member.value for member in cls.CODECS), value)
                )
            return value
        field = cls.model_fields[name]
        return _positive(f"{cls.LABEL} {field.alias or name}", value)


class VideoPatch(_Checked):
    """Some of the video options (a start's override): what is left out comes from the room's encoding."""

    LABEL = "Video"
    CODECS = VideoCodec

    width: int | None = Field(default=None, ge=16, le=3840, multiple_of=2)
    height: int | None = Field(default=None, ge=16, le=3840, multiple_of=2)
    framerate: int | None = Field(default=None, le=60)
    codec: VideoCodec | None = None
    bitrate: int | None = Field(default=None, ge=50, le=50_000, description="kbps")
    key_frame_interval: float | None = Field(default=None, le=60, alias="keyFrameInterval", description="seconds")
    depth: int | None = Field(default=None, le=48, description="bits per pixel")


class AudioPatch(_Checked):
    LABEL = "Audio"
    CODECS = AudioCodec

    codec: AudioCodec | None = None
    bitrate: int | None = Field(default=None, ge=16, le=512, description="kbps")
    frequency: int | None = Field(default=None, ge=8000, le=48000, description="Hz")

    @field_validator("frequency")
    @classmethod
    def _standard_rate(cls, value: int | None) -> int | None:
        if value is not None and value not in SAMPLE_RATES:
            rates = ", ".join(str(rate) for rate in SAMPLE_RATES)
            raise PydanticCustomError("sample_rate", f"Audio frequency must be one of: {rates}")
        return value


class VideoEncoding(VideoPatch):
    width: int = Field(ge=16, le=3840, multiple_of=2)
    height: int = Field(ge=16, le=3840, multiple_of=2)
    framerate: int = Field(le=60)
    codec: VideoCodec = VideoCodec.H264_MAIN
    bitrate: int = Field(default=3000, ge=50, le=50_000, description="kbps")
    key_frame_interval: float = Field(
        default=DEFAULT_KEYFRAME_INTERVAL_S, le=60, alias="keyFrameInterval", description="seconds"
    )
    depth: int = Field(default=DEFAULT_DEPTH, le=48, description="bits per pixel")


class AudioEncoding(AudioPatch):
    codec: AudioCodec = AudioCodec.AAC
    bitrate: int = Field(default=DEFAULT_AUDIO_KBPS, ge=16, le=512, description="kbps")
    frequency: int = Field(default=DEFAULT_AUDIO_HZ, ge=8000, le=48000, description="Hz")


class AdvancedEncoding(BaseModel):
    """Meet's `MeetRecordingEncodingOptions` (LiveKit's `EncodingOptions`)."""

    model_config = ConfigDict(extra="forbid")

    video: VideoEncoding
    audio: AudioEncoding = AudioEncoding()


class EncodingPatch(BaseModel):
    """Part of the options: either side or any of their fields may be left out."""

    model_config = ConfigDict(extra="forbid")

    video: VideoPatch | None = None
    audio: AudioPatch | None = None


def _object(value: Any, model: type[BaseModel]) -> BaseModel:
    if not isinstance(value, dict):
        raise PydanticCustomError(
            "invalid_encoding", "Encoding must be either a preset string or an encoding configuration object"
        )
    for side in ("video", "audio"):
        if side in value and not isinstance(value[side], dict):
            raise PydanticCustomError("invalid_encoding", f"{side.capitalize()} encoding must be a valid object")
    try:
        return model.model_validate(value)
    except ValidationError as exc:  # re-raised as is: pydantic keeps each error's place under this field
        raise exc from None


def _preset(value: str) -> EncodingPreset:
    try:
        return EncodingPreset(value)
    except ValueError:
        options = ", ".join(preset.value for preset in EncodingPreset)
        raise PydanticCustomError(
            "invalid_encoding_preset", f"Invalid encoding preset. Must be one of: {options}"
        ) from None


def parse_encoding(value: Any) -> EncodingPreset | AdvancedEncoding:
    """A room's encoding: a preset name or the options (left-out fields take callrec's defaults)."""
    if isinstance(value, EncodingPreset | AdvancedEncoding):
        return value
    if isinstance(value, str):
        return _preset(value)
    encoding = _object(value, AdvancedEncoding)
    assert isinstance(encoding, AdvancedEncoding)
    return encoding


def parse_override(value: Any) -> EncodingPreset | EncodingPatch:
    """A start's encoding: a preset name, or options of which any part may be left out."""
    if isinstance(value, EncodingPreset | EncodingPatch):
        return value
    if isinstance(value, AdvancedEncoding):
        value = value.model_dump(by_alias=True)
    if isinstance(value, str):
        return _preset(value)
    patch = _object(value, EncodingPatch)
    assert isinstance(patch, EncodingPatch)
    return patch


def _same(value: Any) -> Any:
    return value


# The serializer is the identity typed as the union: pydantic then writes a preset's name or the options by their
# Meet names (a plain validator alone would leave the serializer untyped, and the OpenAPI document without them).
Encoding = Annotated[
    EncodingPreset | AdvancedEncoding,
    PlainValidator(parse_encoding, json_schema_input_type=EncodingPreset | AdvancedEncoding),
    PlainSerializer(_same, return_type=EncodingPreset | AdvancedEncoding),
]
EncodingOverride = Annotated[
    EncodingPreset | EncodingPatch,
    PlainValidator(parse_override, json_schema_input_type=EncodingPreset | EncodingPatch),
    PlainSerializer(_same, return_type=EncodingPreset | EncodingPatch),
]


def options_of(encoding: EncodingPreset | AdvancedEncoding) -> AdvancedEncoding:
    """The full options an encoding stands for (a preset: its size, rate and bitrate, H.264 Main, AAC)."""
    if isinstance(encoding, AdvancedEncoding):
        return encoding
    width, height, fps, kbps = PRESET_VALUES[EncodingPreset(encoding)]
    return AdvancedEncoding(video=VideoEncoding(width=width, height=height, framerate=fps, bitrate=kbps))


def merge(base: EncodingPreset | AdvancedEncoding, override: EncodingPreset | EncodingPatch) -> Encoding:
    """`override` laid over `base`: a preset replaces it; options replace only the fields they name."""
    if not isinstance(override, EncodingPatch):
        return override
    given = override.model_dump(by_alias=True, exclude_none=True)
    if not given.get("video") and not given.get("audio"):
        return base
    full = options_of(base).model_dump(by_alias=True)
    for side, fields in given.items():
        full[side] = full[side] | fields
    return AdvancedEncoding.model_validate(full)


# What FFmpeg calls a codec (and an H.264 profile), as Meet's codec names.
_VIDEO_CODECS_BY_NAME = {"vp8": VideoCodec.VP8.value}
_H264_PROFILES = {
    "baseline": VideoCodec.H264_BASELINE.value,
    "constrained baseline": VideoCodec.H264_BASELINE.value,
    "main": VideoCodec.H264_MAIN.value,
    "high": VideoCodec.H264_HIGH.value,
}
_AUDIO_CODECS_BY_NAME = {"opus": AudioCodec.OPUS.value, "aac": AudioCodec.AAC.value, "mp3": AudioCodec.AC_MP3.value}


def encoding_of_media(
    *,
    width: int | None,
    height: int | None,
    framerate: float | None,
    video_codec: str | None,
    video_profile: str | None,
    audio_codec: str | None,
) -> dict[str, Any]:
    """What a stored file holds, in the shape of Meet's encoding options: the parts a file tells (size, frame
    rate, codecs; no bitrates or keyframe interval), codecs by Meet's names where it has one (else FFmpeg's)."""
    encoding: dict[str, Any] = {}
    if video_codec is not None:
        codec = _VIDEO_CODECS_BY_NAME.get(video_codec, video_codec)
        if video_codec == "h264":
            codec = _H264_PROFILES.get((video_profile or "").lower(), "h264")
        video = {"width": width, "height": height, "framerate": round(framerate) if framerate else None}
        encoding["video"] = {key: value for key, value in video.items() if value is not None} | {"codec": codec}
    if audio_codec is not None:
        encoding["audio"] = {"codec": _AUDIO_CODECS_BY_NAME.get(audio_codec, audio_codec)}
    return encoding
