"""Recording layouts and encodings: merging a request's override with the room's config, and render specs."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from callrec.domain.layout import (
    AdvancedEncoding,
    AudioEncoding,
    EncodingPreset,
    Layout,
    RecordingConfig,
    RecordingOverride,
    RenderSpec,
    VideoEncoding,
    effective_config,
    render_spec,
)

ADVANCED = AdvancedEncoding(video=VideoEncoding(width=640, height=360, framerate=25))
ROOM = RecordingConfig(enabled=False, layout=Layout.SPEAKER, encoding=EncodingPreset.H264_1080P_60)


# ------------------------------------------------------------------ effective_config


def test_no_override_is_the_room_config() -> None:
    assert effective_config(ROOM, None) == ROOM


def test_empty_override_is_the_room_config() -> None:
    assert effective_config(ROOM, RecordingOverride()) == ROOM


def test_layout_only_override_keeps_room_encoding_and_enabled() -> None:
    result = effective_config(ROOM, RecordingOverride(layout=Layout.GRID))
    assert result.layout is Layout.GRID
    assert result.encoding == EncodingPreset.H264_1080P_60
    assert result.enabled is False


def test_encoding_only_override_keeps_room_layout() -> None:
    result = effective_config(ROOM, RecordingOverride(encoding=EncodingPreset.PORTRAIT_H264_720P_30))
    assert result.layout is Layout.SPEAKER
    assert result.encoding == EncodingPreset.PORTRAIT_H264_720P_30
    assert result.enabled is False


def test_full_override_wins_on_every_field() -> None:
    result = effective_config(ROOM, RecordingOverride(layout=Layout.SINGLE_SPEAKER, encoding=ADVANCED))
    assert result == RecordingConfig(enabled=False, layout=Layout.SINGLE_SPEAKER, encoding=ADVANCED)


def test_override_does_not_change_the_room_config() -> None:
    room = RecordingConfig(layout=Layout.SPEAKER)
    effective_config(room, RecordingOverride(layout=Layout.GRID, encoding=ADVANCED))
    assert room.layout is Layout.SPEAKER
    assert room.encoding == EncodingPreset.H264_720P_30


def test_override_from_json_payload() -> None:
    override = RecordingOverride.model_validate({"encoding": "H264_720P_60"})
    result = effective_config(RecordingConfig(), override)
    assert result.encoding == EncodingPreset.H264_720P_60
    assert render_spec(result.encoding).framerate == 60
    assert result.layout is Layout.GRID


# ------------------------------------------------------------------ render_spec


@pytest.mark.parametrize(
    ("preset", "width", "height", "fps", "kbps"),
    [
        (EncodingPreset.H264_720P_30, 1280, 720, 30, 3000),
        (EncodingPreset.H264_720P_60, 1280, 720, 60, 4500),
        (EncodingPreset.H264_1080P_30, 1920, 1080, 30, 4500),
        (EncodingPreset.H264_1080P_60, 1920, 1080, 60, 6000),
        (EncodingPreset.PORTRAIT_H264_720P_30, 720, 1280, 30, 3000),
        (EncodingPreset.PORTRAIT_H264_720P_60, 720, 1280, 60, 4500),
        (EncodingPreset.PORTRAIT_H264_1080P_30, 1080, 1920, 30, 4500),
        (EncodingPreset.PORTRAIT_H264_1080P_60, 1080, 1920, 60, 6000),
    ],
)
def test_preset_render_spec(preset: EncodingPreset, width: int, height: int, fps: int, kbps: int) -> None:
    spec = render_spec(preset)
    assert (spec.width, spec.height, spec.framerate, spec.video_bitrate_kbps) == (width, height, fps, kbps)
    assert spec.h264_profile == "main"
    assert spec.audio_sample_rate == 48000
    if preset.startswith("PORTRAIT_"):
        assert spec.height > spec.width
    else:
        assert spec.width > spec.height


def test_every_preset_has_a_render_spec() -> None:
    for preset in EncodingPreset:
        assert render_spec(preset).framerate in (30, 60)


def test_preset_given_as_plain_string() -> None:
    assert render_spec("H264_1080P_30") == render_spec(EncodingPreset.H264_1080P_30)  # type: ignore[arg-type]


def test_room_config_preset_string_is_validated_to_the_preset() -> None:
    config = RecordingConfig.model_validate({"encoding": "PORTRAIT_H264_1080P_60"})
    spec = render_spec(config.encoding)
    assert (spec.width, spec.height, spec.framerate) == (1080, 1920, 60)


def test_advanced_encoding_render_spec() -> None:
    encoding = AdvancedEncoding.model_validate(
        {
            "video": {
                "width": 854,
                "height": 480,
                "framerate": 24,
                "codec": "H264_HIGH",
                "bitrate": 1200,
                "keyFrameInterval": 2.5,
            },
            "audio": {"bitrate": 96, "frequency": 44100},
        }
    )
    assert render_spec(encoding) == RenderSpec(
        width=854,
        height=480,
        framerate=24,
        video_bitrate_kbps=1200,
        keyframe_interval_s=2.5,
        h264_profile="high",
        audio_bitrate_kbps=96,
        audio_sample_rate=44100,
    )


def test_advanced_encoding_defaults() -> None:
    spec = render_spec(ADVANCED)
    assert spec == RenderSpec(
        width=640,
        height=360,
        framerate=25,
        video_bitrate_kbps=3000,
        keyframe_interval_s=4.0,
        h264_profile="main",
        audio_bitrate_kbps=128,
        audio_sample_rate=48000,
    )


@pytest.mark.parametrize(
    ("codec", "profile"), [("H264_BASELINE", "baseline"), ("H264_MAIN", "main"), ("H264_HIGH", "high")]
)
def test_codec_maps_to_h264_profile(codec: str, profile: str) -> None:
    encoding = AdvancedEncoding(
        video=VideoEncoding.model_validate({"width": 320, "height": 240, "framerate": 30, "codec": codec})
    )
    assert render_spec(encoding).h264_profile == profile


def test_key_frame_interval_by_field_name_too() -> None:
    video = VideoEncoding(width=320, height=240, framerate=30, key_frame_interval=1.0)
    assert render_spec(AdvancedEncoding(video=video, audio=AudioEncoding())).keyframe_interval_s == 1.0


def test_advanced_encoding_in_room_config_from_json() -> None:
    config = RecordingConfig.model_validate(
        {"layout": "single-speaker", "encoding": {"video": {"width": 720, "height": 1280, "framerate": 60}}}
    )
    assert config.layout is Layout.SINGLE_SPEAKER
    assert isinstance(config.encoding, AdvancedEncoding)
    assert render_spec(config.encoding).height == 1280


# ------------------------------------------------------------------ validation


def _video(**changes: Any) -> dict[str, Any]:
    return {"width": 640, "height": 360, "framerate": 30} | changes


@pytest.mark.parametrize(
    "video",
    [
        _video(width=641),
        _video(height=361),
        _video(framerate=0),
        _video(framerate=61),
        _video(width=8),
        _video(width=4000),
        _video(bitrate=10),
        _video(keyFrameInterval=0),
        _video(codec="H265"),  # VP8 is one of Meet's codecs (the built-in recorder refuses it at start)
        _video(extra_field=1),
        {"width": 640, "height": 360},
    ],
)
def test_invalid_video_encoding(video: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        AdvancedEncoding.model_validate({"video": video})


@pytest.mark.parametrize(
    "audio",
    [{"codec": "VORBIS"}, {"frequency": 4000}, {"bitrate": 8}, {"channels": 2}],
)
def test_invalid_audio_encoding(audio: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        AdvancedEncoding.model_validate({"video": _video(), "audio": audio})


def test_advanced_encoding_rejects_extra_fields() -> None:
    with pytest.raises(ValidationError):
        AdvancedEncoding.model_validate({"video": _video(), "container": "mp4"})


@pytest.mark.parametrize("encoding", ["H264_4K_30", "h264_720p_30", "", 720])
def test_unknown_preset_is_rejected(encoding: object) -> None:
    with pytest.raises(ValidationError):
        RecordingConfig.model_validate({"encoding": encoding})
    with pytest.raises(ValidationError):
        RecordingOverride.model_validate({"encoding": encoding})


def test_unknown_layout_is_rejected() -> None:
    with pytest.raises(ValidationError):
        RecordingOverride.model_validate({"layout": "mosaic"})


@pytest.mark.parametrize("model", [RecordingConfig, RecordingOverride])
def test_config_models_reject_extra_fields(model: type[RecordingConfig] | type[RecordingOverride]) -> None:
    with pytest.raises(ValidationError):
        model.model_validate({"layout": "grid", "resolution": "1080p"})


def test_override_cannot_change_enabled() -> None:
    with pytest.raises(ValidationError):
        RecordingOverride.model_validate({"enabled": False})
