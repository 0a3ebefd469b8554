"""Check that a finished recording is a complete, playable file before it is published.

The whole file is demuxed (packets are read, never decoded), streaming, so multi-GB files are fine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
from av.audio.stream import AudioStream
from av.container import InputContainer
from av.stream import Stream
from av.video.stream import VideoStream

from callrec.media.sniff import SNIFF_BYTES, ebml_segment_end, sniff_mimetype

InvalidMediaCode = Literal[
    "empty_file",
    "unreadable",
    "wrong_container",
    "no_streams",
    "missing_video",
    "truncated",
    "zero_duration",
]


@dataclass(frozen=True)
class MediaInfo:
    container: str  # 'mp4', 'webm', 'mkv' or 'ogg' (Ogg audio or Ogg video)
    duration_s: float
    width: int | None
    height: int | None
    video_codec: str | None
    audio_codec: str | None
    framerate: float | None
    video_profile: str | None = None  # the encoder profile as FFmpeg names it ('High', 'Constrained Baseline'...)


class InvalidMedia(Exception):
    """A recording file that must not be published; `reason` is one sentence a person can act on."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


_LABELS = {"mp4": "MP4", "webm": "WebM", "mkv": "Matroska", "ogg": "Ogg"}


def _open(path: Path, size: int, head: bytes) -> InputContainer:
    try:
        return av.open(str(path), mode="r")
    except (av.FFmpegError, OSError, ValueError) as exc:
        if sniff_mimetype(head) == "video/mp4":
            raise InvalidMedia(
                "truncated",
                f"The MP4 file ({size} bytes) is cut off: it starts like an MP4 but its index (moov atom) is "
                "missing, which happens when the recorder stops before finishing the file; record it again.",
            ) from exc
        detail = getattr(exc, "strerror", None) or str(exc)
        raise InvalidMedia(
            "unreadable",
            f"The file is not a readable audio or video file (FFmpeg says: {detail}).",
        ) from exc


_OGG_PAGE_MAGIC = b"OggS"
_OGG_MAX_PAGE = 27 + 255 + 255 * 255
_OGG_EOS = 0x04


def _ogg_ends_cleanly(path: Path, size: int) -> bool:
    """True when the file's last Ogg page is complete, ends exactly at EOF and is flagged end-of-stream.

    A recorder that dies mid-write leaves either a partial last page or no end-of-stream page.
    """
    with path.open("rb") as f:
        f.seek(max(0, size - 2 * _OGG_MAX_PAGE))
        tail = f.read()
    i = tail.rfind(_OGG_PAGE_MAGIC)
    while i >= 0:
        if i + 27 <= len(tail):
            segments = tail[i + 26]
            lacing = tail[i + 27 : i + 27 + segments]
            if len(lacing) == segments and i + 27 + segments + sum(lacing) == len(tail):
                return bool(tail[i + 5] & _OGG_EOS)
        i = tail.rfind(_OGG_PAGE_MAGIC, 0, i)
    return False


MAX_DROPPED_PACKETS = 2


def _index_end(streams: Sequence[Stream]) -> int:
    """The byte offset where the last sample the container's index refers to ends (0 if no index)."""
    end = 0
    for stream in streams:
        for entry in stream.index_entries:
            end = max(end, entry.pos + entry.size)
    return end


def _check_container(container: InputContainer, kind: Literal["video", "audio"], head: bytes) -> str:
    """The container's short name: video may be MP4, WebM, Matroska or Ogg; audio must be Ogg."""
    name = container.format.name
    names = name.split(",")
    if kind == "video":
        if "mp4" in names:
            return "mp4"
        if "matroska" in names:  # FFmpeg's one demuxer for both; the EBML DocType tells them apart
            return "webm" if sniff_mimetype(head) == "video/webm" else "mkv"
        if "ogg" in names:
            return "ogg"
        raise InvalidMedia(
            "wrong_container", f"The file is not an MP4, WebM, Matroska or Ogg container (found {name!r})."
        )
    if "ogg" not in names:
        raise InvalidMedia("wrong_container", f"The file is not an Ogg container (found {name!r}).")
    return "ogg"


def _stream_seconds(stream: Stream | None) -> float:
    if stream is None or not stream.duration or stream.time_base is None:
        return 0.0
    return float(stream.duration * stream.time_base)


def probe_recording(path: Path, kind: Literal["video", "audio"] = "video") -> MediaInfo:
    """Describe a recording, or raise InvalidMedia saying why it is not a complete `kind` recording."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        raise InvalidMedia("unreadable", f"The file {path.name} does not exist.") from exc
    if size == 0:
        raise InvalidMedia("empty_file", "The file is empty (0 bytes); the recorder wrote nothing.")
    try:
        with path.open("rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError as exc:
        raise InvalidMedia("unreadable", f"The file {path.name} cannot be read ({exc.strerror or exc}).") from exc

    with _open(path, size, head) as container:
        container_name = _check_container(container, kind, head)
        label = _LABELS[container_name]
        streams = list(container.streams)
        if not any(s.type in ("video", "audio") for s in streams):
            raise InvalidMedia("no_streams", "The file contains no audio or video streams.")
        video: VideoStream | None = container.streams.video[0] if container.streams.video else None
        audio: AudioStream | None = container.streams.audio[0] if container.streams.audio else None
        if kind == "video" and video is None:
            raise InvalidMedia(
                "missing_video",
                f"The {label} file has no video stream; it holds audio only.",
            )
        if kind == "audio" and audio is None:
            raise InvalidMedia("no_streams", "The Ogg file has no audio stream.")

        index_end = _index_end(streams)
        if index_end > size:
            raise InvalidMedia(
                "truncated",
                f"The file is cut off: its index points to data up to byte {index_end} but the file has only "
                f"{size} bytes.",
            )
        segment_end = ebml_segment_end(head) if container_name in ("webm", "mkv") else None
        if segment_end is not None and segment_end > size:
            raise InvalidMedia(
                "truncated",
                f"The {label} file is cut off: its header says it runs to byte {segment_end} but the file has "
                f"only {size} bytes.",
            )
        if container_name == "ogg" and not _ogg_ends_cleanly(path, size):
            raise InvalidMedia(
                "truncated",
                "The Ogg file is cut off: it does not end with a complete end-of-stream page.",
            )

        packets = dict.fromkeys((s.index for s in streams), 0)
        data_end = 0
        end_time = 0.0
        try:
            for packet in container.demux():
                if packet.size == 0:  # the demuxer's end-of-stream marker
                    continue
                if packet.pos is not None and packet.pos >= 0:
                    data_end = max(data_end, packet.pos + packet.size)
                packets[packet.stream.index] = packets.get(packet.stream.index, 0) + 1
                if packet.pts is not None and packet.time_base is not None:
                    end_time = max(
                        end_time,
                        float((packet.pts + (packet.duration or 0)) * packet.time_base),
                    )
        except av.FFmpegError as exc:
            raise InvalidMedia(
                "truncated",
                f"The file is damaged or cut off: reading it failed part way through ({exc}).",
            ) from exc

        if data_end > size:
            raise InvalidMedia(
                "truncated",
                f"The file is cut off: its data runs to byte {data_end} but the file has only {size}.",
            )
        for stream in streams:
            # The byte checks above catch a cut MP4; the mov demuxer may still drop a packet or two that an
            # edit list trims (AAC priming/padding), so only a clear shortfall counts here.
            if stream.frames and packets[stream.index] < stream.frames - MAX_DROPPED_PACKETS:
                raise InvalidMedia(
                    "truncated",
                    f"The file is cut off: it holds {packets[stream.index]} of the {stream.frames} {stream.type} "
                    "frames its index lists.",
                )

        if container.duration is not None and container.duration > 0:
            duration = container.duration / av.time_base
        else:
            duration = max(_stream_seconds(video), _stream_seconds(audio), end_time)
        if duration <= 0:
            raise InvalidMedia(
                "zero_duration",
                "The recording has zero duration; nothing was recorded.",
            )

        return MediaInfo(
            container=container_name,
            duration_s=duration,
            width=video.codec_context.width if video is not None else None,
            height=video.codec_context.height if video is not None else None,
            video_codec=video.codec_context.name if video is not None else None,
            audio_codec=audio.codec_context.name if audio is not None else None,
            framerate=float(video.average_rate) if video is not None and video.average_rate else None,
            video_profile=video.codec_context.profile if video is not None else None,
        )
