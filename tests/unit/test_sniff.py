"""Telling an uploaded recording's format from its first bytes, and checking its name as Nextcloud Talk does."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from callrec.media.sniff import (
    ALLOWED_FORMATS,
    SNIFF_BYTES,
    UploadFormatError,
    check_upload,
    ebml_segment_end,
    sniff_mimetype,
)


@dataclass(frozen=True)
class Media:
    """A real file PyAV writes: container format and codecs, the mimetype Talk files it under, its extension."""

    container_format: str
    video: str | None
    audio: str | None
    mimetype: str
    extension: str
    audio_first: bool = False  # add the audio stream before the video stream


MEDIA = {
    "mp4-h264-aac": Media("mp4", "libx264", "aac", "video/mp4", "mp4"),
    "mp4-aac": Media("mp4", None, "aac", "video/mp4", "mp4"),  # Talk files audio-only MP4 as video/mp4 too
    "webm-vp8-opus": Media("webm", "libvpx", "libopus", "video/webm", "webm"),
    "webm-vp9-vorbis": Media("webm", "libvpx-vp9", "vorbis", "video/webm", "webm"),
    "webm-opus": Media("webm", None, "libopus", "video/webm", "webm"),
    "mkv-h264-aac": Media("matroska", "libx264", "aac", "video/x-matroska", "mkv"),
    "mkv-vp9-opus": Media("matroska", "libvpx-vp9", "libopus", "video/x-matroska", "mkv"),
    "ogv-vp8-opus": Media("ogg", "libvpx", "libopus", "video/ogg", "ogv"),
    "ogv-vorbis-vp8": Media("ogg", "libvpx", "vorbis", "video/ogg", "ogv", audio_first=True),
    "ogg-opus": Media("ogg", None, "libopus", "audio/ogg", "ogg"),
    "ogg-vorbis": Media("ogg", None, "vorbis", "audio/ogg", "ogg"),
    "ogg-flac": Media("ogg", None, "flac", "audio/ogg", "ogg"),
}


def write_media(path: Path, media: Media, seconds: float = 1.0, options: dict[str, str] | None = None) -> Path:
    """A small real file: 64x48 frames changing every 0.1 s and/or a stereo 440 Hz tone."""
    rate, sample_rate = 10, 48000
    with av.open(str(path), mode="w", format=media.container_format, options=options or {}) as container:

        def add_video() -> av.VideoStream:
            stream = container.add_stream(media.video or "", rate=rate)
            assert isinstance(stream, av.VideoStream)
            stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
            return stream

        def add_audio() -> av.AudioStream:
            # FFmpeg's own Vorbis encoder is flagged experimental and only does stereo
            stream = container.add_stream(media.audio or "", rate=sample_rate, options={"strict": "experimental"})
            assert isinstance(stream, av.AudioStream)
            stream.layout = "stereo"
            return stream

        audio = add_audio() if media.audio and media.audio_first else None
        video = add_video() if media.video else None
        if media.audio and audio is None:
            audio = add_audio()
        if video is not None:
            for i in range(round(seconds * rate)):
                pixels = np.full((48, 64, 3), (i * 37) % 256, dtype=np.uint8)
                frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
                frame.pts, frame.time_base = i, Fraction(1, rate)
                container.mux(video.encode(frame))
            container.mux(video.encode(None))
        if audio is not None:
            samples = round(seconds * sample_rate)
            tone = (0.3 * np.sin(np.arange(samples) / sample_rate * 2 * np.pi * 440)).astype(np.float32)
            sound = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
            sound.sample_rate, sound.pts, sound.time_base = sample_rate, 0, Fraction(1, sample_rate)
            container.mux(audio.encode(sound))
            container.mux(audio.encode(None))
    return path


@pytest.fixture(scope="module")
def media_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("sniff")
    return {name: write_media(folder / f"{name}.{media.extension}", media) for name, media in MEDIA.items()}


def head_of(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(SNIFF_BYTES)


def upload_error(filename: str, head: bytes) -> str:
    with pytest.raises(UploadFormatError) as excinfo:
        check_upload(filename, head)
    return excinfo.value.error


def test_allowed_formats_match_talk() -> None:
    assert ALLOWED_FORMATS == {
        "audio/ogg": ("ogg",),
        "video/ogg": ("ogv",),
        "video/mp4": ("mp4",),
        "video/webm": ("webm",),
        "video/x-matroska": ("mkv",),
    }
    assert SNIFF_BYTES == 4096


@pytest.mark.parametrize("name", MEDIA)
def test_real_files_sniff_as_talk_files_them(media_files: dict[str, Path], name: str) -> None:
    media, path = MEDIA[name], media_files[name]
    with av.open(str(path)) as container:  # the file really holds what the table says
        assert (len(container.streams.video), len(container.streams.audio)) == (1 if media.video else 0, 1)
    head = head_of(path)
    assert sniff_mimetype(head) == media.mimetype
    assert sniff_mimetype(path.read_bytes()) == media.mimetype  # more than SNIFF_BYTES is fine
    assert check_upload(f"recording-{name}.{media.extension}", head) == (media.mimetype, media.extension)
    assert check_upload(f"UPPER.{media.extension.upper()}", head) == (media.mimetype, media.extension)
    assert check_upload(f"../../x.{media.extension}", head) == (media.mimetype, media.extension)
    for other in {"ogg", "ogv", "mp4", "webm", "mkv", "exe"} - {media.extension}:
        assert upload_error(f"call.{other}", head) == "file_extension"
    assert upload_error("call", head) == "file_extension"
    assert upload_error(f"call.{media.extension}.txt", head) == "file_extension"


# ---- hand-made headers -------------------------------------------------------------------------------------------


def ogg_page(packet: bytes, *, first: bool = True, serial: int = 1) -> bytes:
    """One Ogg page holding one whole packet (CRC left zero: sniffing does not check it)."""
    lacing = bytes([255] * (len(packet) // 255) + [len(packet) % 255])
    flags = 0x02 if first else 0x00
    return b"OggS" + struct.pack("<BBqIII", 0, flags, 0, serial, 0, 0) + bytes([len(lacing)]) + lacing + packet


THEORA = b"\x80theora" + bytes([3, 2, 1]) + bytes(31)
OPUS = b"OpusHead" + bytes([1, 2, 0x38, 1, 0x80, 0xBB, 0, 0, 0, 0, 0])
VORBIS = b"\x01vorbis" + bytes(23)
SPEEX = b"Speex   1.2.1" + bytes(67)
FLAC = b"\x7fFLAC\x01\x00\x00\x01fLaC" + bytes(38)


@pytest.mark.parametrize(
    ("head", "mimetype"),
    [
        (ogg_page(THEORA) + ogg_page(VORBIS, serial=2), "video/ogg"),
        (ogg_page(OPUS) + ogg_page(THEORA, serial=2), "video/ogg"),  # video is the second stream
        (ogg_page(VORBIS) + ogg_page(THEORA, serial=2) + ogg_page(b"\x81theora", first=False), "video/ogg"),
        (ogg_page(THEORA)[:40], "video/ogg"),
        (ogg_page(b"OVP80\x01\x01\x00" + bytes(18)), "video/ogg"),
        (ogg_page(OPUS), "audio/ogg"),
        (ogg_page(VORBIS), "audio/ogg"),
        (ogg_page(SPEEX), "audio/ogg"),
        (ogg_page(FLAC), "audio/ogg"),
        # a video header counts only on a first (beginning-of-stream) page, not inside later data
        (ogg_page(OPUS) + ogg_page(THEORA, first=False), "audio/ogg"),
        # nor beyond the bytes that are sniffed
        (ogg_page(OPUS + bytes(SNIFF_BYTES)) + ogg_page(THEORA, serial=2), "audio/ogg"),
    ],
)
def test_ogg_video_or_audio(head: bytes, mimetype: str) -> None:
    assert sniff_mimetype(head) == mimetype


def ebml(element_id: int, data: bytes, size_length: int = 1) -> bytes:
    """An EBML element with its size written as a `size_length`-byte variable-size integer."""
    size = len(data) | 1 << 7 * size_length
    return element_id.to_bytes((element_id.bit_length() + 7) // 8, "big") + size.to_bytes(size_length, "big") + data


def ebml_header(doctype: bytes, size_length: int = 1) -> bytes:
    version = ebml(0x4286, b"\x01")
    return ebml(0x1A45DFA3, version + ebml(0x4282, doctype) + ebml(0x4287, b"\x04"), size_length)


@pytest.mark.parametrize(
    ("head", "mimetype"),
    [
        (ebml_header(b"webm"), "video/webm"),
        (ebml_header(b"matroska"), "video/x-matroska"),
        (ebml_header(b"matroska\x00\x00"), "video/x-matroska"),  # a string padded with NULs
        (ebml_header(b"webm", size_length=8), "video/webm"),
        # the DocType element's id is 0x4282; the same bytes inside another element's data do not count
        (ebml(0x1A45DFA3, ebml(0x4287, b"\x42\x82\x84webm") + ebml(0x4282, b"matroska")), "video/x-matroska"),
        (ebml(0x1A45DFA3, ebml(0x4287, b"\x42\x82\x84webm")), None),
        (ebml_header(b"matroska")[:-5], None),  # DocType cut off
        (ebml_header(b"mkv"), None),
        (ebml_header(b"webm")[:3], None),
        (b"\x1a\x45\xdf\xa3\x00", None),  # an invalid size
        (b"\x1a\x45\xdf\xa3\x84\x42\x82\x00", None),  # an invalid size inside
    ],
)
def test_ebml_doctype(head: bytes, mimetype: str | None) -> None:
    assert sniff_mimetype(head) == mimetype


def test_ebml_segment_end() -> None:
    header = ebml_header(b"webm")
    known = header + b"\x18\x53\x80\x67\x01\x00\x00\x00\x00\x00\x10\x00"
    assert ebml_segment_end(known) == len(known) + 0x1000
    unknown = header + b"\x18\x53\x80\x67\x01\xff\xff\xff\xff\xff\xff\xff"  # written live
    assert ebml_segment_end(unknown) is None
    assert ebml_segment_end(header + b"\x1f\x43\xb6\x75\x80") is None  # no Segment next
    assert ebml_segment_end(header) is None
    assert ebml_segment_end(b"") is None


@pytest.mark.parametrize(
    "head",
    [
        b"MZ\x90\x00" + bytes(4092),  # a Windows .exe
        b"Hello, this is a text file.\n" * 10,
        b"",
        b"OggS"[:3],
        b"\x00\x00\x00\x20ftyp"[:7],
        b"\x7fELF\x02\x01\x01" + bytes(57),
    ],
)
def test_other_content_has_no_mimetype(head: bytes) -> None:
    assert sniff_mimetype(head) is None
    for extension in ("mp4", "ogg", "ogv", "webm", "mkv", "exe"):
        assert upload_error(f"call.{extension}", head) == "file_mimetype"


@pytest.mark.parametrize("filename", ["", "dir/", "../", "..", ".", "a/.", "c:\\rec\\", "a\x00.mp4", "a\nb.mp4"])
def test_bad_names(media_files: dict[str, Path], filename: str) -> None:
    assert upload_error(filename, head_of(media_files["mp4-h264-aac"])) == "file_name"
    assert upload_error(filename, b"MZ\x90\x00") == "file_name"  # the name is checked first


def test_directory_parts_are_dropped(media_files: dict[str, Path]) -> None:
    head = head_of(media_files["mkv-h264-aac"])
    assert check_upload("../../x.mkv", head) == ("video/x-matroska", "mkv")
    assert check_upload("C:\\Recordings\\call.MKV", head) == ("video/x-matroska", "mkv")
    assert check_upload(".mkv", head) == ("video/x-matroska", "mkv")  # like PHP's pathinfo: extension 'mkv'
    assert upload_error("x.mkv/call.mp4", head) == "file_extension"
    assert upload_error("x.mp4", b"text") == "file_mimetype"  # the mimetype is checked before the extension
    error = UploadFormatError("file_name")
    assert error.error == "file_name" and str(error) == "file_name"
