"""Validating recording files before they are published."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np
import pytest

from callrec.domain.layout import Layout, RenderSpec
from callrec.media.probe import InvalidMedia, probe_recording
from callrec.media.render import render_file
from callrec.media.sniff import ebml_segment_end
from tests.unit.test_sniff import MEDIA, write_media

SMALL = RenderSpec(width=320, height=180, framerate=10, video_bitrate_kbps=300)
PEOPLE = [("alice", "Alice"), ("bob", "Bob")]


def invalid(path: Path, kind: Literal["video", "audio"] = "video") -> InvalidMedia:
    with pytest.raises(InvalidMedia) as excinfo:
        probe_recording(path, kind)
    assert excinfo.value.reason.endswith(".")
    return excinfo.value


def write_noise_video(path: Path, container_format: str, frames: int = 20) -> None:
    """A video-only file with noisy frames (so it has real bulk), moov written at the end."""
    rng = np.random.default_rng(0)
    with av.open(str(path), mode="w", format=container_format) as container:
        stream = container.add_stream("libx264", rate=10, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
        for i in range(frames):
            pixels = rng.integers(0, 256, (96, 160, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 10)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


@pytest.fixture(scope="module")
def good_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("probe") / "good.mp4"
    render_file(path, Layout.GRID, PEOPLE, SMALL, duration_s=2.0)
    return path


@pytest.fixture(scope="module")
def good_ogg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("probe") / "good.ogg"
    render_file(path, Layout.GRID, PEOPLE, SMALL, duration_s=2.0, audio_only=True)
    return path


def cut(source: Path, target: Path, fraction: float) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * fraction)])
    return target


def test_complete_recordings_probe_ok(good_mp4: Path, good_ogg: Path) -> None:
    video = probe_recording(good_mp4)
    assert (video.container, video.video_codec, video.audio_codec) == ("mp4", "h264", "aac")
    assert (video.width, video.height, video.framerate) == (320, 180, 10.0)
    assert video.duration_s == pytest.approx(2.0, abs=0.05)
    audio = probe_recording(good_ogg, "audio")
    assert (audio.container, audio.audio_codec, audio.video_codec) == ("ogg", "opus", None)
    assert audio.duration_s == pytest.approx(2.0, abs=0.05)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.touch()
    assert invalid(path).code == "empty_file"


def test_missing_file(tmp_path: Path) -> None:
    assert invalid(tmp_path / "nope.mp4").code == "unreadable"


def test_random_bytes_are_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "noise.mp4"
    path.write_bytes(os.urandom(64 * 1024))
    assert invalid(path).code == "unreadable"


def test_matroska_is_the_wrong_container(tmp_path: Path) -> None:
    path = tmp_path / "call.mkv"
    write_noise_video(path, "matroska")
    error = invalid(path, "audio")  # a video recording may be Matroska (see the end of this file); audio may not
    assert error.code == "wrong_container"
    assert "matroska" in error.reason


def test_mp4_is_the_wrong_container_for_audio(good_mp4: Path) -> None:
    assert invalid(good_mp4, "audio").code == "wrong_container"


@pytest.mark.parametrize("fraction", [0.5, 0.9, 0.995])
def test_cut_off_mp4_with_index_up_front_is_truncated(good_mp4: Path, tmp_path: Path, fraction: float) -> None:
    # render_file writes the index (moov) first, so the cut loses media data
    path = cut(good_mp4, tmp_path / "cut.mp4", fraction)
    error = invalid(path)
    assert error.code == "truncated"
    assert "cut off" in error.reason


def test_cut_off_mp4_without_index_is_truncated(tmp_path: Path) -> None:
    # a recorder killed mid-call leaves an MP4 whose index (written last) is missing
    whole = tmp_path / "whole.mp4"
    write_noise_video(whole, "mp4")
    probe_recording(whole)
    error = invalid(cut(whole, tmp_path / "cut.mp4", 0.5))
    assert error.code == "truncated"
    assert "moov" in error.reason


def test_cut_off_ogg_is_truncated(good_ogg: Path, tmp_path: Path) -> None:
    for fraction in (0.5, 0.99):
        path = cut(good_ogg, tmp_path / "cut.ogg", fraction)
        assert invalid(path, "audio").code == "truncated"


def test_audio_only_mp4_is_missing_video(tmp_path: Path) -> None:
    path = tmp_path / "audio.mp4"
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("aac", rate=48000)
        stream.layout = "mono"
        tone = np.sin(np.arange(48000) / 48000 * 2 * np.pi * 440).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(tone[None, :], format="fltp", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 48000, 0, Fraction(1, 48000)
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    error = invalid(path)
    assert error.code == "missing_video"


def test_mp4_without_a_single_frame_has_no_streams(tmp_path: Path) -> None:
    path = tmp_path / "nothing.mp4"
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        container.start_encoding()
        container.mux(stream.encode(None))
    assert path.stat().st_size > 0
    assert invalid(path).code == "no_streams"


# ---- the other formats Talk-style recording servers upload: WebM, Matroska, Ogg video --------------------------

CONTAINERS = {"mp4": "mp4", "webm": "webm", "matroska": "mkv", "ogg": "ogg"}
CODECS = {
    "libx264": "h264",
    "libvpx": "vp8",
    "libvpx-vp9": "vp9",
    "aac": "aac",
    "libopus": "opus",
    "vorbis": "vorbis",
    "flac": "flac",
}
WITH_VIDEO = [name for name, media in MEDIA.items() if media.video]
OGG_AUDIO = [name for name, media in MEDIA.items() if media.mimetype == "audio/ogg"]


@pytest.fixture(scope="module")
def talk_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("talk")
    return {name: write_media(folder / f"{name}.{media.extension}", media) for name, media in MEDIA.items()}


@pytest.mark.parametrize("name", WITH_VIDEO)
def test_video_recordings_in_every_talk_container(talk_files: dict[str, Path], name: str) -> None:
    media = MEDIA[name]
    info = probe_recording(talk_files[name], "video")
    assert info.container == CONTAINERS[media.container_format]
    assert (info.video_codec, info.audio_codec) == (CODECS[media.video or ""], CODECS[media.audio or ""])
    assert (info.width, info.height, info.framerate) == (64, 48, 10.0)
    assert info.duration_s == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize("name", OGG_AUDIO)
def test_ogg_audio_recordings(talk_files: dict[str, Path], name: str) -> None:
    info = probe_recording(talk_files[name], "audio")
    assert (info.container, info.audio_codec, info.video_codec) == ("ogg", CODECS[MEDIA[name].audio or ""], None)
    assert info.duration_s == pytest.approx(1.0, abs=0.1)
    error = invalid(talk_files[name], "video")
    assert error.code == "missing_video"
    assert error.reason == "The Ogg file has no video stream; it holds audio only."


def test_audio_only_webm_is_missing_video(talk_files: dict[str, Path]) -> None:
    error = invalid(talk_files["webm-opus"], "video")
    assert (error.code, error.reason) == ("missing_video", "The WebM file has no video stream; it holds audio only.")


@pytest.mark.parametrize("name", ["webm-vp8-opus", "webm-opus", "mkv-h264-aac", "mp4-aac"])
def test_only_ogg_is_the_right_container_for_audio(talk_files: dict[str, Path], name: str) -> None:
    error = invalid(talk_files[name], "audio")
    assert error.code == "wrong_container"
    assert "not an Ogg container" in error.reason


def test_avi_is_the_wrong_container_for_video(tmp_path: Path) -> None:
    path = tmp_path / "call.avi"
    write_noise_video(path, "avi")
    error = invalid(path)
    assert error.code == "wrong_container"
    assert "'avi'" in error.reason


@pytest.mark.parametrize("name", ["webm-vp8-opus", "webm-vp9-vorbis", "mkv-h264-aac", "mkv-vp9-opus"])
@pytest.mark.parametrize("fraction", [0.5, 0.99])
def test_cut_off_webm_and_matroska_are_truncated(
    talk_files: dict[str, Path], tmp_path: Path, name: str, fraction: float
) -> None:
    source = talk_files[name]
    error = invalid(cut(source, tmp_path / source.name, fraction))
    assert error.code == "truncated"
    assert f"runs to byte {source.stat().st_size}" in error.reason


@pytest.mark.parametrize("name", ["ogv-vp8-opus", "ogv-vorbis-vp8"])
@pytest.mark.parametrize("fraction", [0.5, 0.99])
def test_cut_off_ogg_video_is_truncated(
    talk_files: dict[str, Path], tmp_path: Path, name: str, fraction: float
) -> None:
    source = talk_files[name]
    assert invalid(cut(source, tmp_path / source.name, fraction)).code == "truncated"


def test_webm_written_live_without_sizes_is_fine(tmp_path: Path) -> None:
    # a WebM written as a live stream (like a browser's MediaRecorder) does not know its size; that is no cut
    path = write_media(tmp_path / "live.webm", MEDIA["webm-vp8-opus"], options={"live": "1"})
    assert ebml_segment_end(path.read_bytes()) is None
    info = probe_recording(path)
    assert (info.container, info.video_codec, info.audio_codec) == ("webm", "vp8", "opus")
    assert info.duration_s == pytest.approx(1.0, abs=0.1)
