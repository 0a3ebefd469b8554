"""How a recording is asked of LiveKit Egress, and how LiveKit's answers map back: pure functions, no I/O.

- layouts: ours are the names of LiveKit's built-in room composite templates (`grid`, `speaker`,
  `single-speaker`);
- encodings: a preset becomes LiveKit's `EncodingOptionsPreset` of the same name; advanced options become
  `EncodingOptions` (width, height, framerate, H.264 profile, video bitrate in kbps, key frame interval in
  seconds, audio codec, bitrate in kbps and sample rate);
- every codec of Meet's sets (`DEFAULT_VC`, `H264_*`, `VP8`; `DEFAULT_AC`, `OPUS`, `AAC`, `AC_MP3`) is LiveKit's
  of the same name, and `depth` goes as is: LiveKit decides what its file output can carry;
- kind: video is an MP4 file; audio is `audio_only` into an Ogg file, whose audio LiveKit encodes as Opus
  (Ogg cannot carry AAC), so advanced audio options keep their bitrate and rate but ask for Opus;
- the file goes to our object store's bucket at `staging/{recording_id}/livekit.{mp4|ogg}`, where the
  workflow's finalize step validates it and moves it to `recordings/{room}/{id}.{ext}` as for any upload.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from livekit.protocol.egress import (
    EncodedFileOutput,
    EncodedFileType,
    EncodingOptions,
    EncodingOptionsPreset,
    RoomCompositeEgressRequest,
    S3Upload,
)
from livekit.protocol.models import AudioCodec, VideoCodec

from callrec.domain.encoding import AudioCodec as MeetAudioCodec
from callrec.domain.encoding import VideoCodec as MeetVideoCodec
from callrec.domain.layout import AdvancedEncoding, Encoding, EncodingPreset, Layout
from callrec.domain.recording import EgressStart, RecordingKind

LAYOUTS: dict[Layout, str] = {
    Layout.GRID: "grid",
    Layout.SPEAKER: "speaker",
    Layout.SINGLE_SPEAKER: "single-speaker",
}
EXTENSIONS: dict[RecordingKind, str] = {RecordingKind.VIDEO: "mp4", RecordingKind.AUDIO: "ogg"}
FILE_TYPES: dict[RecordingKind, EncodedFileType] = {
    RecordingKind.VIDEO: EncodedFileType.MP4,
    RecordingKind.AUDIO: EncodedFileType.OGG,
}
PRESETS: dict[EncodingPreset, EncodingOptionsPreset] = {
    EncodingPreset.H264_720P_30: EncodingOptionsPreset.H264_720P_30,
    EncodingPreset.H264_720P_60: EncodingOptionsPreset.H264_720P_60,
    EncodingPreset.H264_1080P_30: EncodingOptionsPreset.H264_1080P_30,
    EncodingPreset.H264_1080P_60: EncodingOptionsPreset.H264_1080P_60,
    EncodingPreset.PORTRAIT_H264_720P_30: EncodingOptionsPreset.PORTRAIT_H264_720P_30,
    EncodingPreset.PORTRAIT_H264_720P_60: EncodingOptionsPreset.PORTRAIT_H264_720P_60,
    EncodingPreset.PORTRAIT_H264_1080P_30: EncodingOptionsPreset.PORTRAIT_H264_1080P_30,
    EncodingPreset.PORTRAIT_H264_1080P_60: EncodingOptionsPreset.PORTRAIT_H264_1080P_60,
}
# Meet's codec names are LiveKit's: each one maps to the enum value of the same name.
VIDEO_CODECS: dict[str, VideoCodec] = {
    MeetVideoCodec.DEFAULT_VC: VideoCodec.DEFAULT_VC,
    MeetVideoCodec.H264_BASELINE: VideoCodec.H264_BASELINE,
    MeetVideoCodec.H264_MAIN: VideoCodec.H264_MAIN,
    MeetVideoCodec.H264_HIGH: VideoCodec.H264_HIGH,
    MeetVideoCodec.VP8: VideoCodec.VP8,
}
AUDIO_CODECS: dict[str, AudioCodec] = {
    MeetAudioCodec.DEFAULT_AC: AudioCodec.DEFAULT_AC,
    MeetAudioCodec.OPUS: AudioCodec.OPUS,
    MeetAudioCodec.AAC: AudioCodec.AAC,
    MeetAudioCodec.AC_MP3: AudioCodec.AC_MP3,
}
STAGING_FILE = "livekit"
_STAGING_KEY = re.compile(r"^staging/(?P<recording>[A-Za-z0-9_-]+)/livekit\.(?P<ext>mp4|ogg)$")
DEFAULT_S3_REGION = "us-east-1"  # what MinIO and most S3-compatible servers answer to when none is set


@dataclass(frozen=True)
class S3Target:
    """The object store LiveKit uploads to: our own bucket."""

    endpoint: str
    access_key: str
    secret_key: str
    bucket: str
    region: str | None = None
    secure: bool = False


def room_layout(layout: Layout) -> str:
    return LAYOUTS[layout]


def file_type(kind: RecordingKind) -> EncodedFileType:
    return FILE_TYPES[kind]


def staging_key(recording_id: str, kind: RecordingKind) -> str:
    """Where LiveKit uploads the recording's file (the `filepath` of its file output)."""
    return f"staging/{recording_id}/{STAGING_FILE}.{EXTENSIONS[kind]}"


def parse_staging_key(key: str) -> tuple[str, str] | None:
    """(recording id, extension) of a key `staging_key` made; None for any other key."""
    match = _STAGING_KEY.match(key)
    return (match["recording"], match["ext"]) if match else None


def preset(encoding: EncodingPreset) -> EncodingOptionsPreset:
    return PRESETS[EncodingPreset(encoding)]


def advanced(encoding: AdvancedEncoding, kind: RecordingKind = RecordingKind.VIDEO) -> EncodingOptions:
    audio = encoding.audio
    if kind == RecordingKind.AUDIO:
        return EncodingOptions(
            audio_codec=AudioCodec.OPUS, audio_bitrate=audio.bitrate, audio_frequency=audio.frequency
        )
    video = encoding.video
    return EncodingOptions(
        width=video.width,
        height=video.height,
        depth=video.depth,
        framerate=video.framerate,
        video_codec=VIDEO_CODECS[video.codec],
        video_bitrate=video.bitrate,
        key_frame_interval=video.key_frame_interval,
        audio_codec=AUDIO_CODECS[audio.codec],
        audio_bitrate=audio.bitrate,
        audio_frequency=audio.frequency,
    )


def encoding_options(encoding: Encoding, kind: RecordingKind) -> dict[str, Any]:
    """The request's `preset` or `advanced` field (one of LiveKit's `options`), as keyword arguments."""
    if isinstance(encoding, AdvancedEncoding):
        return {"advanced": advanced(encoding, kind)}
    return {"preset": preset(encoding)}


def s3_endpoint_url(endpoint: str, secure: bool) -> str:
    """LiveKit wants a URL; our setting may be `host:port` with `s3_secure` saying the scheme."""
    if "://" in endpoint:
        return endpoint.rstrip("/")
    return f"{'https' if secure else 'http'}://{endpoint}"


def s3_upload(target: S3Target) -> S3Upload:
    return S3Upload(
        access_key=target.access_key,
        secret=target.secret_key,
        region=target.region or DEFAULT_S3_REGION,
        endpoint=s3_endpoint_url(target.endpoint, target.secure),
        bucket=target.bucket,
        force_path_style=True,
    )


def composite_request(request: EgressStart, target: S3Target) -> RoomCompositeEgressRequest:
    """The room composite egress that records `request`: the room by its id, into our bucket's staging key."""
    return RoomCompositeEgressRequest(
        room_name=request.room_id,
        layout=room_layout(request.layout),
        audio_only=request.kind == RecordingKind.AUDIO,
        file_outputs=[
            EncodedFileOutput(
                file_type=file_type(request.kind),
                filepath=staging_key(request.recording_id, request.kind),
                s3=s3_upload(target),
            )
        ],
        **encoding_options(request.encoding, request.kind),
    )


# ------------------------------------------------------------------ call presence from participant webhooks


MAX_PARTICIPANT_FIELD = 128  # what callrec.domain.participants.Participant accepts


def _bounded(value: str) -> str:
    return value[:MAX_PARTICIPANT_FIELD]


def joined(participants: Sequence[dict[str, Any]], identity: str, name: str) -> list[dict[str, Any]]:
    """The call's participants after `identity` joined (once; a rejoin updates the name, keeps the role)."""
    identity = _bounded(identity)
    entry = {"id": identity, "name": _bounded(name or identity), "role": "speaker"}
    found = False
    result: list[dict[str, Any]] = []
    for participant in participants:
        if participant.get("id") == identity:
            result.append(participant | {"name": entry["name"]})
            found = True
        else:
            result.append(dict(participant))
    return result if found else [*result, entry]


def left(participants: Sequence[dict[str, Any]], identity: str) -> list[dict[str, Any]]:
    identity = _bounded(identity)
    return [dict(p) for p in participants if p.get("id") != identity]
