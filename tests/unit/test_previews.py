"""A recording's pictures, made from real rendered recordings: poster, seek thumbnails and their track, waveform."""

from __future__ import annotations

import io
import logging
import math
import re
from collections.abc import AsyncIterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from callrec.activities.files import FileActivities
from callrec.domain.layout import Layout, RenderSpec
from callrec.media.previews import (
    DARK_LUMA,
    MAX_TILES,
    POSTER,
    SPRITE,
    SPRITE_URL,
    THUMBNAILS,
    WAVEFORM,
    WAVEFORM_SIZE,
    make_previews,
    preview_key,
    sprite_layout,
    thumbnails_vtt,
    with_secret,
)
from callrec.media.probe import probe_recording
from callrec.media.render import render_file
from callrec.storage.objects.local import LocalObjectStore

SMALL = RenderSpec(width=320, height=180, framerate=10, video_bitrate_kbps=300, keyframe_interval_s=1.0)
PEOPLE = [("alice", "Alice"), ("bob", "Bob")]
CUE = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})$")


def picture(data: bytes, kind: str) -> npt.NDArray[np.uint8]:
    image = Image.open(io.BytesIO(data))
    assert image.format == kind
    return np.asarray(image.convert("RGBA" if kind == "PNG" else "RGB"), dtype=np.uint8)


def luma(rgb: npt.NDArray[np.uint8]) -> float:
    return float((rgb[..., :3].astype(np.float64) @ np.array([0.2126, 0.7152, 0.0722])).mean())


def seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def cues(track: str) -> list[tuple[float, float, tuple[int, int, int, int]]]:
    """(start, end, xywh) of each cue of a WebVTT track of sprite tiles."""
    lines = track.splitlines()
    assert lines[0] == "WEBVTT"
    found = []
    for index, line in enumerate(lines):
        if match := CUE.match(line):
            url = lines[index + 1]
            assert url.startswith(f"{SPRITE_URL}#xywh="), url
            x, y, w, h = (int(v) for v in url.split("#xywh=")[1].split(","))
            found.append((seconds(*match.groups()[:4]), seconds(*match.groups()[4:]), (x, y, w, h)))
    return found


def bar_filled(rgb: npt.NDArray[np.uint8]) -> float:
    """How much of the rendered progress bar (bottom rows; it fills once every 10 s) is lit."""
    row = rgb[-2].astype(np.float64).mean(axis=1)
    return float((row > 128).mean())


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    path = tmp_path_factory.mktemp("previews") / "call.mp4"
    render_file(path, Layout.GRID, PEOPLE, SMALL, duration_s=12.0)
    return path, probe_recording(path).duration_s


def test_poster_is_a_picture_a_few_seconds_in(video: tuple[Path, float]) -> None:
    path, duration = video
    poster = picture(make_previews(path, duration)[POSTER], "JPEG")
    assert poster.shape == (180, 320, 3)
    assert luma(poster) > 3 * DARK_LUMA  # the participants' tiles, not a black frame
    # The progress bar says when: 3 s into its 10 s period (10 fps: frame 30 lights 31 of 100 steps).
    assert 0.25 <= bar_filled(poster) <= 0.4


def black_then_picture(path: Path, black_s: float, total_s: float) -> None:
    """A video that is black for `black_s` seconds, then grey: what a call that takes a while to start looks like."""
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=10, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 160, 90, "yuv420p"
        stream.codec_context.gop_size = 10
        for index in range(round(total_s * 10)):
            level = 0 if index < black_s * 10 else 180
            frame = av.VideoFrame.from_ndarray(np.full((90, 160, 3), level, dtype=np.uint8), format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, 10)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def test_a_black_start_is_not_the_poster(tmp_path: Path) -> None:
    path = tmp_path / "late.mp4"
    black_then_picture(path, black_s=6.0, total_s=10.0)  # 3 s and 5 s in are black, 7.5 s is not
    poster = picture(make_previews(path, 10.0)[POSTER], "JPEG")
    assert luma(poster) > 150


def test_a_recording_black_throughout_still_has_a_poster(tmp_path: Path) -> None:
    path = tmp_path / "dark.mp4"
    black_then_picture(path, black_s=5.0, total_s=5.0)
    poster = picture(make_previews(path, 5.0)[POSTER], "JPEG")
    assert poster.shape == (90, 160, 3) and luma(poster) < DARK_LUMA


def test_thumbnail_track_covers_the_recording_with_tiles_of_the_sprite(video: tuple[Path, float]) -> None:
    path, duration = video
    made = make_previews(path, duration)
    assert set(made) == {POSTER, SPRITE, THUMBNAILS}
    sprite = picture(made[SPRITE], "JPEG")
    found = cues(made[THUMBNAILS].decode())

    assert len(found) == math.ceil(duration)  # 12 s: one tile a second
    assert found[0][0] == 0 and found[-1][1] == pytest.approx(duration, abs=0.001)
    for (_, end, _), (start, _, _) in zip(found, found[1:], strict=False):
        assert start == end  # back to back
    boxes = {box for _, _, box in found}
    assert len(boxes) == len(found)  # a tile each
    for x, y, w, h in boxes:
        assert (w, h) == (160, 90)
        assert x + w <= sprite.shape[1] and y + h <= sprite.shape[0]
        tile = sprite[y : y + h, x : x + w]
        assert luma(tile) > 3 * DARK_LUMA  # a picture in every tile
    # Each tile is the picture at its time: the progress bar grows along the first 10 s.
    fills = [bar_filled(sprite[y : y + h, x : x + w]) for _, _, (x, y, w, h) in found[:10]]
    assert fills == sorted(fills) and fills[-1] - fills[0] > 0.5


@pytest.mark.parametrize(
    ("duration", "interval", "count"),
    [(0.4, 1, 1), (12.0, 1, 12), (100.0, 1, 100), (100.5, 2, 51), (250.0, 3, 84), (4 * 3600.0, 144, 100)],
)
def test_sprite_has_at_most_a_hundred_tiles(duration: float, interval: int, count: int) -> None:
    layout = sprite_layout(duration, 1920, 1080)
    assert (layout.interval_s, layout.count) == (interval, count)
    assert layout.count <= MAX_TILES and layout.count * layout.interval_s >= duration
    assert (layout.tile_width, layout.tile_height) == (160, 90)
    width, height = layout.size
    assert width <= 1600 and height == layout.rows * 90 and layout.rows * layout.columns >= count


def test_a_long_track_has_contiguous_cues_to_the_end() -> None:
    duration = 4 * 3600 + 7.25
    found = cues(thumbnails_vtt(sprite_layout(duration, 1280, 720), duration))
    assert len(found) <= MAX_TILES
    assert found[0][0] == 0 and found[-1][1] == pytest.approx(duration, abs=0.001)
    assert all(a[1] == b[0] for a, b in zip(found, found[1:], strict=False))


def test_the_track_carries_the_secret_to_the_sprite() -> None:
    track = "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nthumbnails.jpg#xywh=0,0,160,90\n"
    assert with_secret(track, None) == track
    shared = with_secret(track, "s3cr+t/=")
    assert "thumbnails.jpg?recordingSecret=s3cr%2Bt%2F%3D#xywh=0,0,160,90" in shared


def test_audio_recording_gets_a_waveform(tmp_path: Path) -> None:
    path = tmp_path / "call.ogg"
    render_file(path, Layout.GRID, PEOPLE, SMALL, duration_s=3.0, audio_only=True)
    made = make_previews(path, probe_recording(path, kind="audio").duration_s)
    assert set(made) == {WAVEFORM}
    image = picture(made[WAVEFORM], "PNG")
    width, height = WAVEFORM_SIZE
    assert image.shape == (height, width, 4)
    drawn = image[..., 3] > 0
    # Steady tones all along: a tall bar in (nearly) every column.
    heights = drawn.sum(axis=0)
    assert (heights > 0.8 * height).mean() > 0.95


def test_silence_draws_a_flat_line(tmp_path: Path) -> None:
    path = tmp_path / "silent.ogg"
    render_file(path, Layout.GRID, [], SMALL, duration_s=2.0, audio_only=True)  # nobody: no tone
    image = picture(make_previews(path, 2.0)[WAVEFORM], "PNG")
    heights = (image[..., 3] > 0).sum(axis=0)
    assert heights.max() <= 3 and heights.min() >= 1


def test_a_file_that_is_not_media_raises(tmp_path: Path) -> None:
    path = tmp_path / "noise.mp4"
    path.write_bytes(b"\x00" * 1000)
    with pytest.raises(av.FFmpegError):
        make_previews(path, 1.0)


def test_pictures_are_stored_next_to_the_recording() -> None:
    assert preview_key("recordings/r1/r1--EG_a--b.mp4", POSTER) == "recordings/r1/r1--EG_a--b.poster.jpg"
    assert preview_key("recordings/r1/x.ogg", WAVEFORM) == "recordings/r1/x.waveform.png"


async def test_pictures_that_cannot_be_made_leave_none_behind(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = LocalObjectStore(tmp_path / "store")
    key = "recordings/r1/r1--EG_a--b.mp4"
    stale = preview_key(key, POSTER)  # from an earlier attempt on another file
    await store.put_stream(stale, chunks(b"old poster"))
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 1000)

    with caplog.at_level(logging.WARNING, logger="callrec.activities.files"):
        await FileActivities(store)._store_previews(broken, key, 5.0)  # does not raise: the recording is stored

    assert await store.list_keys("recordings/") == []
    [warning] = [r for r in caplog.records if r.name == "callrec.activities.files"]
    assert warning.levelno == logging.WARNING and key in warning.getMessage()


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data
