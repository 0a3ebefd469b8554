"""Meet 3.8's encoding object: its codec sets, presets and messages, the field-by-field override, what the built-in
recorder writes for it and what LiveKit is asked."""

from __future__ import annotations

from typing import Any

import pytest
from livekit.protocol.egress import EncodingOptions
from livekit.protocol.models import AudioCodec as LkAudioCodec
from livekit.protocol.models import VideoCodec as LkVideoCodec
from pydantic import ValidationError

from callrec.domain import livekit
from callrec.domain.encoding import (
    AdvancedEncoding,
    AudioCodec,
    EncodingPatch,
    EncodingPreset,
    VideoCodec,
    merge,
    options_of,
)
from callrec.domain.layout import (
    BUILTIN_MAX_KEYFRAME_INTERVAL_S,
    RecordingConfig,
    RecordingOverride,
    UnsupportedEncoding,
    builtin_encoding,
    effective_config,
    render_spec,
)
from callrec.domain.recording import RecordingKind
from callrec.media.render import FRAGMENT_S

FULL: dict[str, Any] = {
    "video": {
        "width": 1920,
        "height": 1080,
        "framerate": 60,
        "codec": "H264_HIGH",
        "bitrate": 6000,
        "keyFrameInterval": 2,
        "depth": 24,
    },
    "audio": {"codec": "AAC", "bitrate": 192, "frequency": 48000},
}


def _errors(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        RecordingOverride.model_validate(data)
    return [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in caught.value.errors()]


# ------------------------------------------------------------------ Meet's sets


def test_codec_and_preset_sets_are_meets() -> None:
    assert [c.value for c in VideoCodec] == ["DEFAULT_VC", "H264_BASELINE", "H264_MAIN", "H264_HIGH", "VP8"]
    assert [c.value for c in AudioCodec] == ["DEFAULT_AC", "OPUS", "AAC", "AC_MP3"]
    assert {p.value for p in EncodingPreset} == {
        f"{portrait}H264_{size}_{fps}"
        for portrait in ("", "PORTRAIT_")
        for size in ("720P", "1080P")
        for fps in (30, 60)
    }


def test_meets_full_object_round_trips() -> None:
    config = RecordingConfig.model_validate({"encoding": FULL})
    assert config.model_dump(mode="json", by_alias=True)["encoding"] == FULL


# ------------------------------------------------------------------ Meet's messages


@pytest.mark.parametrize(
    ("side", "field", "label"),
    [
        ("video", "width", "Video width"),
        ("video", "height", "Video height"),
        ("video", "framerate", "Video framerate"),
        ("video", "bitrate", "Video bitrate"),
        ("video", "keyFrameInterval", "Video keyFrameInterval"),
        ("video", "depth", "Video depth"),
        ("audio", "bitrate", "Audio bitrate"),
        ("audio", "frequency", "Audio frequency"),
    ],
)
@pytest.mark.parametrize("value", [0, -5])
def test_not_positive_numbers_get_meets_message(side: str, field: str, label: str, value: int) -> None:
    assert _errors({"encoding": {side: {field: value}}}) == [
        (f"encoding.{side}.{field}", f"{label} must be a positive number")
    ]


@pytest.mark.parametrize(("value", "kind"), [("1280", "string"), (True, "boolean"), (None, "null"), ([1], "array")])
def test_non_numbers_are_refused_as_zod_refuses_them(value: Any, kind: str) -> None:
    encoding = {"video": FULL["video"] | {"width": value}}
    if value is None:  # a null part counts as left out in a patch; the room's own object needs a number
        with pytest.raises(ValidationError):
            RecordingConfig.model_validate({"encoding": {"video": encoding["video"]}})
        return
    assert _errors({"encoding": encoding}) == [("encoding.video.width", f"Expected number, received {kind}")]


def test_codecs_outside_meets_sets() -> None:
    assert _errors({"encoding": {"video": {"codec": "H265"}, "audio": {"codec": "FLAC"}}}) == [
        (
            "encoding.video.codec",
            "Invalid enum value. Expected 'DEFAULT_VC' | 'H264_BASELINE' | 'H264_MAIN' | 'H264_HIGH' | 'VP8', "
            "received 'H265'",
        ),
        (
            "encoding.audio.codec",
            "Invalid enum value. Expected 'DEFAULT_AC' | 'OPUS' | 'AAC' | 'AC_MP3', received 'FLAC'",
        ),
    ]


def test_preset_and_shape_messages() -> None:
    presets = ", ".join(p.value for p in EncodingPreset)
    assert _errors({"encoding": "H264_4K"}) == [("encoding", f"Invalid encoding preset. Must be one of: {presets}")]
    assert _errors({"encoding": 3}) == [
        ("encoding", "Encoding must be either a preset string or an encoding configuration object")
    ]
    assert _errors({"encoding": {"video": "big"}}) == [("encoding", "Video encoding must be a valid object")]
    assert _errors({"encoding": {"audio": [1]}}) == [("encoding", "Audio encoding must be a valid object")]


def test_callrecs_own_bounds_beyond_meets() -> None:
    """Meet takes any positive number; callrec keeps sizes and rates its recorders can encode."""
    for video in ({"width": 7680}, {"width": 641}, {"framerate": 120}, {"bitrate": 10}, {"keyFrameInterval": 600}):
        with pytest.raises(ValidationError):
            RecordingOverride.model_validate({"encoding": {"video": video}})
    assert _errors({"encoding": {"audio": {"frequency": 10000}}})[0][1].startswith("Audio frequency must be one of")
    with pytest.raises(ValidationError):
        RecordingOverride.model_validate({"encoding": {"video": {"width": 640, "colour": "red"}}})


# ------------------------------------------------------------------ the override, field by field


def test_partial_options_keep_the_rooms_other_values() -> None:
    room = RecordingConfig.model_validate({"encoding": FULL})
    result = effective_config(room, RecordingOverride.model_validate({"encoding": {"video": {"bitrate": 2000}}}))
    assert result.model_dump(mode="json", by_alias=True)["encoding"] == {
        "video": FULL["video"] | {"bitrate": 2000},
        "audio": FULL["audio"],
    }


def test_partial_options_over_a_preset_start_from_the_presets_values() -> None:
    room = RecordingConfig(encoding=EncodingPreset.PORTRAIT_H264_1080P_60)
    override = RecordingOverride.model_validate({"encoding": {"audio": {"codec": "OPUS", "frequency": 44100}}})
    encoding = effective_config(room, override).encoding
    assert isinstance(encoding, AdvancedEncoding)
    assert (encoding.video.width, encoding.video.height, encoding.video.framerate, encoding.video.bitrate) == (
        1080,
        1920,
        60,
        6000,
    )
    assert (encoding.audio.codec, encoding.audio.frequency, encoding.audio.bitrate) == (AudioCodec.OPUS, 44100, 128)


def test_video_only_and_audio_only_options() -> None:
    room = RecordingConfig.model_validate({"encoding": FULL})
    video_only = effective_config(room, RecordingOverride.model_validate({"encoding": {"video": FULL["video"]}}))
    audio_only = effective_config(
        room, RecordingOverride.model_validate({"encoding": {"audio": {"codec": "AC_MP3", "bitrate": 96}}})
    )
    assert video_only.encoding == room.encoding
    assert isinstance(audio_only.encoding, AdvancedEncoding)
    assert audio_only.encoding.video == options_of(room.encoding).video
    assert (audio_only.encoding.audio.codec, audio_only.encoding.audio.bitrate) == (AudioCodec.AC_MP3, 96)


def test_whole_objects_and_presets_replace_as_in_meet() -> None:
    room = RecordingConfig(encoding=EncodingPreset.H264_1080P_30)
    full = effective_config(room, RecordingOverride.model_validate({"encoding": FULL}))
    assert full.model_dump(mode="json", by_alias=True)["encoding"] == FULL
    preset = effective_config(full, RecordingOverride.model_validate({"encoding": "H264_720P_60"}))
    assert preset.encoding == EncodingPreset.H264_720P_60
    empty = effective_config(full, RecordingOverride.model_validate({"encoding": {}}))
    assert empty.encoding == full.encoding
    assert merge(EncodingPreset.H264_720P_30, EncodingPatch()) == EncodingPreset.H264_720P_30


# ------------------------------------------------------------------ what the built-in recorder writes


def test_builtin_recorder_states_what_it_writes() -> None:
    asked = AdvancedEncoding.model_validate(
        {
            "video": FULL["video"] | {"codec": "DEFAULT_VC", "keyFrameInterval": 10, "depth": 30},
            "audio": {"codec": "OPUS", "bitrate": 96, "frequency": 44100},
        }
    )
    used = builtin_encoding(asked)
    assert isinstance(used, AdvancedEncoding)
    assert (used.video.codec, used.video.depth, used.video.key_frame_interval) == (VideoCodec.H264_MAIN, 24, 2.0)
    assert (used.audio.codec, used.audio.bitrate, used.audio.frequency) == (AudioCodec.AAC, 96, 44100)
    spec = render_spec(used)
    assert (spec.h264_profile, spec.keyframe_interval_s, spec.audio_sample_rate) == ("main", 2.0, 44100)
    audio = builtin_encoding(asked, audio_only=True)
    assert isinstance(audio, AdvancedEncoding)
    assert (audio.audio.codec, audio.audio.frequency) == (AudioCodec.OPUS, 48000)
    assert builtin_encoding(EncodingPreset.H264_1080P_60) == EncodingPreset.H264_1080P_60
    assert BUILTIN_MAX_KEYFRAME_INTERVAL_S == FRAGMENT_S


def test_builtin_recorder_refuses_vp8_for_video_only() -> None:
    vp8 = AdvancedEncoding.model_validate({"video": FULL["video"] | {"codec": "VP8"}, "audio": FULL["audio"]})
    with pytest.raises(UnsupportedEncoding) as caught:
        builtin_encoding(vp8)
    assert caught.value.field == "config.encoding.video.codec"
    assert isinstance(builtin_encoding(vp8, audio_only=True), AdvancedEncoding)  # no video to encode


# ------------------------------------------------------------------ what LiveKit is asked


@pytest.mark.parametrize("codec", list(VideoCodec))
def test_every_meet_video_codec_reaches_livekit(codec: VideoCodec) -> None:
    encoding = AdvancedEncoding.model_validate(
        {"video": FULL["video"] | {"codec": codec.value}, "audio": FULL["audio"]}
    )
    assert livekit.advanced(encoding).video_codec == LkVideoCodec.Value(codec.value)


@pytest.mark.parametrize("codec", list(AudioCodec))
def test_every_meet_audio_codec_reaches_livekit(codec: AudioCodec) -> None:
    encoding = AdvancedEncoding.model_validate(
        {"video": FULL["video"], "audio": FULL["audio"] | {"codec": codec.value}}
    )
    assert livekit.advanced(encoding).audio_codec == LkAudioCodec.Value(codec.value)


def test_livekit_gets_every_field_of_a_merged_encoding() -> None:
    room = RecordingConfig(encoding=EncodingPreset.H264_720P_30)
    override = RecordingOverride.model_validate(
        {"encoding": {"video": {"bitrate": 2000, "depth": 16}, "audio": {"codec": "OPUS"}}}
    )
    encoding = effective_config(room, override).encoding
    assert livekit.encoding_options(encoding, RecordingKind.VIDEO) == {
        "advanced": EncodingOptions(
            width=1280,
            height=720,
            depth=16,
            framerate=30,
            video_codec=LkVideoCodec.H264_MAIN,
            video_bitrate=2000,
            key_frame_interval=4.0,
            audio_codec=LkAudioCodec.OPUS,
            audio_bitrate=128,
            audio_frequency=48000,
        )
    }


def test_a_stored_files_encoding_in_meets_names() -> None:
    """What a Talk recording server made (it takes no encoding), as the recording shows it once stored."""
    from callrec.domain.encoding import encoding_of_media

    webm = encoding_of_media(
        width=1920, height=1080, framerate=29.97, video_codec="vp8", video_profile=None, audio_codec="opus"
    )
    assert webm == {
        "video": {"width": 1920, "height": 1080, "framerate": 30, "codec": "VP8"},
        "audio": {"codec": "OPUS"},
    }
    ogg = encoding_of_media(
        width=None, height=None, framerate=None, video_codec=None, video_profile=None, audio_codec="opus"
    )
    assert ogg == {"audio": {"codec": "OPUS"}}
    baseline = encoding_of_media(
        width=640,
        height=360,
        framerate=None,
        video_codec="h264",
        video_profile="Constrained Baseline",
        audio_codec=None,
    )
    assert baseline == {"video": {"width": 640, "height": 360, "codec": "H264_BASELINE"}}
    other = encoding_of_media(
        width=640, height=360, framerate=25, video_codec="vp9", video_profile="Profile 0", audio_codec="vorbis"
    )
    assert other["video"]["codec"] == "vp9" and other["audio"] == {"codec": "vorbis"}  # no Meet name: FFmpeg's
