"""How a recording is asked of LiveKit Egress: layouts, encodings, kinds, the file output, and call presence."""

from __future__ import annotations

from typing import Any

import pytest
from livekit.protocol.egress import (
    EncodedFileType,
    EncodingOptions,
    EncodingOptionsPreset,
    RoomCompositeEgressRequest,
)
from livekit.protocol.models import AudioCodec, VideoCodec

from callrec.domain import livekit
from callrec.domain.layout import AdvancedEncoding, AudioEncoding, EncodingPreset, Layout, VideoEncoding
from callrec.domain.participants import Participant
from callrec.domain.recording import EgressStart, RecordingKind

RECORDING_ID = "weekly-sync-1a2b--EG_abc123--x9y8"
TARGET = livekit.S3Target(endpoint="127.0.0.1:9000", access_key="ak", secret_key="sk", bucket="callrec")
ADVANCED = AdvancedEncoding(
    video=VideoEncoding(width=640, height=360, framerate=25, codec="H264_HIGH", bitrate=1200, key_frame_interval=2.5),
    audio=AudioEncoding(bitrate=96, frequency=44100),
)


def start(kind: RecordingKind = RecordingKind.VIDEO, **fields: object) -> EgressStart:
    values: dict[str, object] = {
        "recording_id": RECORDING_ID,
        "room_id": "weekly-sync-1a2b",
        "kind": kind,
        "layout": Layout.SPEAKER,
        "encoding": EncodingPreset.H264_1080P_60,
        "participants": [],
    }
    return EgressStart.model_validate(values | fields)


# ------------------------------------------------------------------ layouts


@pytest.mark.parametrize(
    ("layout", "template"),
    [(Layout.GRID, "grid"), (Layout.SPEAKER, "speaker"), (Layout.SINGLE_SPEAKER, "single-speaker")],
)
def test_layouts_are_livekit_templates_of_the_same_name(layout: Layout, template: str) -> None:
    assert livekit.room_layout(layout) == template


def test_every_layout_has_a_template() -> None:
    assert set(livekit.LAYOUTS) == set(Layout)


# ------------------------------------------------------------------ encodings


@pytest.mark.parametrize("preset", list(EncodingPreset))
def test_presets_are_livekit_presets_of_the_same_name(preset: EncodingPreset) -> None:
    mapped = livekit.preset(preset)
    assert EncodingOptionsPreset.Name(mapped) == preset.value
    assert livekit.encoding_options(preset, RecordingKind.VIDEO) == {"preset": mapped}


def test_preset_accepts_the_plain_string_from_the_catalog() -> None:
    assert livekit.preset(EncodingPreset("PORTRAIT_H264_720P_60")) == EncodingOptionsPreset.PORTRAIT_H264_720P_60


def test_advanced_video_encoding_maps_every_field() -> None:
    options = livekit.advanced(ADVANCED)
    assert options == EncodingOptions(
        width=640,
        height=360,
        depth=24,
        framerate=25,
        video_codec=VideoCodec.H264_HIGH,
        video_bitrate=1200,
        key_frame_interval=2.5,
        audio_codec=AudioCodec.AAC,
        audio_bitrate=96,
        audio_frequency=44100,
    )
    assert livekit.encoding_options(ADVANCED, RecordingKind.VIDEO) == {"advanced": options}


@pytest.mark.parametrize(
    ("codec", "expected"),
    [
        ("H264_BASELINE", VideoCodec.H264_BASELINE),
        ("H264_MAIN", VideoCodec.H264_MAIN),
        ("H264_HIGH", VideoCodec.H264_HIGH),
    ],
)
def test_h264_profiles(codec: str, expected: VideoCodec) -> None:
    encoding = AdvancedEncoding.model_validate(
        {"video": {"width": 320, "height": 180, "framerate": 10, "codec": codec}}
    )
    assert livekit.advanced(encoding).video_codec == expected


def test_advanced_defaults_carry_over() -> None:
    encoding = AdvancedEncoding(video=VideoEncoding(width=320, height=180, framerate=10))
    options = livekit.advanced(encoding)
    assert (options.video_codec, options.video_bitrate, options.key_frame_interval) == (VideoCodec.H264_MAIN, 3000, 4.0)
    assert (options.audio_codec, options.audio_bitrate, options.audio_frequency) == (AudioCodec.AAC, 128, 48000)


def test_advanced_audio_only_asks_for_opus_and_no_video() -> None:
    options = livekit.advanced(ADVANCED, RecordingKind.AUDIO)
    assert options == EncodingOptions(audio_codec=AudioCodec.OPUS, audio_bitrate=96, audio_frequency=44100)


# ------------------------------------------------------------------ kinds and the file output


def test_video_is_an_mp4_file() -> None:
    assert livekit.file_type(RecordingKind.VIDEO) == EncodedFileType.MP4
    assert livekit.staging_key(RECORDING_ID, RecordingKind.VIDEO) == f"staging/{RECORDING_ID}/livekit.mp4"


def test_audio_is_an_ogg_file() -> None:
    assert livekit.file_type(RecordingKind.AUDIO) == EncodedFileType.OGG
    assert livekit.staging_key(RECORDING_ID, RecordingKind.AUDIO) == f"staging/{RECORDING_ID}/livekit.ogg"


def test_staging_keys_parse_back() -> None:
    for kind, ext in ((RecordingKind.VIDEO, "mp4"), (RecordingKind.AUDIO, "ogg")):
        assert livekit.parse_staging_key(livekit.staging_key(RECORDING_ID, kind)) == (RECORDING_ID, ext)


@pytest.mark.parametrize(
    "key",
    [
        f"recordings/room/{RECORDING_ID}.mp4",
        f"staging/{RECORDING_ID}/other.mp4",
        f"staging/{RECORDING_ID}/livekit.webm",
        f"staging/../{RECORDING_ID}/livekit.mp4",
        f"staging/{RECORDING_ID}/livekit.mp4/x",
        "staging//livekit.mp4",
        "",
    ],
)
def test_other_keys_are_not_ours(key: str) -> None:
    assert livekit.parse_staging_key(key) is None


@pytest.mark.parametrize(
    ("endpoint", "secure", "url"),
    [
        ("127.0.0.1:9000", False, "http://127.0.0.1:9000"),
        ("minio.example.com", True, "https://minio.example.com"),
        ("https://s3.example.com/", False, "https://s3.example.com"),
        ("http://minio:9000", True, "http://minio:9000"),
    ],
)
def test_s3_endpoints_become_urls(endpoint: str, secure: bool, url: str) -> None:
    assert livekit.s3_endpoint_url(endpoint, secure) == url


def test_s3_upload_uses_our_bucket_with_path_style() -> None:
    upload = livekit.s3_upload(TARGET)
    assert (upload.access_key, upload.secret, upload.bucket) == ("ak", "sk", "callrec")
    assert (upload.endpoint, upload.region, upload.force_path_style) == ("http://127.0.0.1:9000", "us-east-1", True)
    regional = livekit.s3_upload(livekit.S3Target("s3.example.com", "ak", "sk", "b", region="eu-west-1", secure=True))
    assert (regional.endpoint, regional.region) == ("https://s3.example.com", "eu-west-1")


def test_video_composite_request() -> None:
    request = livekit.composite_request(start(), TARGET)
    assert request.room_name == "weekly-sync-1a2b"
    assert request.layout == "speaker"
    assert not request.audio_only
    assert request.WhichOneof("options") == "preset"
    assert request.preset == EncodingOptionsPreset.H264_1080P_60
    assert request.WhichOneof("output") is None  # the deprecated single `file` is not used
    [output] = request.file_outputs
    assert output.file_type == EncodedFileType.MP4
    assert output.filepath == f"staging/{RECORDING_ID}/livekit.mp4"
    assert output.s3 == livekit.s3_upload(TARGET)
    assert RoomCompositeEgressRequest.FromString(request.SerializeToString()) == request


def test_the_default_preset_is_sent_although_it_is_protobufs_zero() -> None:
    request = livekit.composite_request(start(encoding=EncodingPreset.H264_720P_30), TARGET)
    assert EncodingOptionsPreset.H264_720P_30 == 0
    decoded = RoomCompositeEgressRequest.FromString(request.SerializeToString())
    assert decoded.WhichOneof("options") == "preset"


def test_audio_composite_request() -> None:
    request = livekit.composite_request(start(RecordingKind.AUDIO, encoding=ADVANCED, layout=Layout.GRID), TARGET)
    assert request.audio_only
    assert request.layout == "grid"
    assert request.WhichOneof("options") == "advanced"
    assert request.advanced.audio_codec == AudioCodec.OPUS
    [output] = request.file_outputs
    assert (output.file_type, output.filepath) == (EncodedFileType.OGG, f"staging/{RECORDING_ID}/livekit.ogg")


# ------------------------------------------------------------------ call presence


def test_joining_adds_a_speaker_named_by_identity_when_nameless() -> None:
    after = livekit.joined([], "alice", "Alice")
    after = livekit.joined(after, "bob", "")
    assert after == [
        {"id": "alice", "name": "Alice", "role": "speaker"},
        {"id": "bob", "name": "bob", "role": "speaker"},
    ]
    assert [Participant.model_validate(p).name for p in after] == ["Alice", "bob"]


def test_rejoining_keeps_one_entry_and_its_role() -> None:
    before: list[dict[str, Any]] = [
        {"id": "alice", "name": "Alice", "role": "moderator"},
        {"id": None, "name": "Guest", "role": "speaker"},
    ]
    after = livekit.joined(before, "alice", "Alice B.")
    assert after == [{"id": "alice", "name": "Alice B.", "role": "moderator"}, before[1]]
    assert before[0]["name"] == "Alice"  # not changed in place


def test_leaving_removes_only_that_participant() -> None:
    before = livekit.joined(livekit.joined([], "alice", "Alice"), "bob", "Bob")
    assert livekit.left(before, "alice") == [{"id": "bob", "name": "Bob", "role": "speaker"}]
    assert livekit.left(before, "carol") == before


def test_long_identities_fit_a_participant() -> None:
    identity = "x" * 300
    after = livekit.joined([], identity, "")
    Participant.model_validate(after[0])
    assert livekit.left(after, identity) == []
