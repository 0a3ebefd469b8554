"""Rendering call recordings: layout geometry, the pictures and sound in real files, live timing."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from callrec.domain.layout import Layout, RenderSpec
from callrec.media.probe import InvalidMedia, probe_recording
from callrec.media.render import (
    BACKGROUND,
    Tile,
    compose_frame,
    participant_color,
    render_file,
    tile_rects,
)

SMALL = RenderSpec(width=320, height=180, framerate=10, video_bitrate_kbps=300)
ALICE = ("alice", "Alice")
BOB = ("bob", "Bob")
CAROL = ("carol", "Carol")

Pixel = tuple[int, int, int]


def assert_well_formed(tiles: list[Tile], width: int, height: int) -> None:
    for t in tiles:
        assert t.width > 0 and t.height > 0
        assert 0 <= t.x and t.x + t.width <= width
        assert 0 <= t.y and t.y + t.height <= height
    for a, b in itertools.combinations(tiles, 2):
        overlap_x = min(a.x + a.width, b.x + b.width) - max(a.x, b.x)
        overlap_y = min(a.y + a.height, b.y + b.height) - max(a.y, b.y)
        assert overlap_x <= 0 or overlap_y <= 0, f"{a} overlaps {b}"


def area(t: Tile) -> int:
    return t.width * t.height


def close_to(actual: npt.ArrayLike, expected: Pixel, tolerance: int = 30) -> bool:
    diff = np.abs(np.asarray(actual, dtype=int) - np.asarray(expected, dtype=int))
    return bool(np.all(diff <= tolerance))


def first_frame(path: Path) -> npt.NDArray[np.uint8]:
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        return np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)


# --- geometry ---------------------------------------------------------------


@pytest.mark.parametrize("layout", list(Layout))
def test_no_participants_means_no_tiles(layout: Layout) -> None:
    assert tile_rects(layout, 0, 1280, 720) == []


@pytest.mark.parametrize("count", range(1, 13))
def test_grid_tiles_are_equal_and_cover_the_frame(count: int) -> None:
    tiles = tile_rects(Layout.GRID, count, 1280, 720)
    assert len(tiles) == count
    assert_well_formed(tiles, 1280, 720)
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    assert len({t.y for t in tiles}) == rows
    assert max(len([t for t in tiles if t.y == y]) for y in {t.y for t in tiles}) == cols
    sizes = [area(t) for t in tiles]
    assert max(sizes) - min(sizes) <= 0.02 * max(sizes)
    # the cells fill the frame: only small gaps between tiles
    assert sum(sizes) >= 0.9 * (1280 * 720) * count / (rows * cols)


def test_speaker_layout_landscape_gives_the_speaker_the_left_three_quarters() -> None:
    tiles = tile_rects(Layout.SPEAKER, 4, 1280, 720)
    assert len(tiles) == 4
    assert_well_formed(tiles, 1280, 720)
    speaker, *strip = tiles
    assert speaker.x < 10 and speaker.height > 700
    assert 0.7 * 1280 <= speaker.width <= 0.8 * 1280
    assert all(t.x >= speaker.x + speaker.width for t in strip)
    assert len({t.x for t in strip}) == 1  # stacked in one column
    assert all(area(speaker) > 3 * area(t) for t in strip)


def test_speaker_layout_portrait_puts_the_speaker_on_top() -> None:
    tiles = tile_rects(Layout.SPEAKER, 3, 720, 1280)
    assert_well_formed(tiles, 720, 1280)
    speaker, *strip = tiles
    assert speaker.width > 700 and 0.7 * 1280 <= speaker.height <= 0.8 * 1280
    assert all(t.y >= speaker.y + speaker.height for t in strip)
    assert all(area(speaker) > 3 * area(t) for t in strip)


def test_speaker_layout_alone_fills_the_frame() -> None:
    [tile] = tile_rects(Layout.SPEAKER, 1, 1280, 720)
    assert tile.width > 1260 and tile.height > 700


@pytest.mark.parametrize("count", [1, 2, 7])
def test_single_speaker_is_one_full_frame_tile(count: int) -> None:
    [tile] = tile_rects(Layout.SINGLE_SPEAKER, count, 1280, 720)
    assert tile.width > 1260 and tile.height > 700


def test_many_participants_still_fit() -> None:
    for layout in Layout:
        assert_well_formed(tile_rects(layout, 30, 320, 180), 320, 180)


# --- colours and the composed picture ----------------------------------------


def test_participant_colour_is_stable_saturated_and_not_background() -> None:
    assert participant_color("alice") == participant_color("alice")
    for i in range(200):
        colour = participant_color(f"participant-{i}")
        assert max(colour) - min(colour) >= 80, colour  # clearly saturated
        assert min(colour) >= BACKGROUND[0] + 30, colour


def test_different_participants_almost_always_get_different_colours() -> None:
    colours = [participant_color(f"user-{i}") for i in range(100)]
    pairs = list(itertools.combinations(colours, 2))
    similar = sum(1 for a, b in pairs if math.dist(a, b) < 30)
    assert similar / len(pairs) < 0.1


def test_compose_frame_paints_tiles_background_and_names() -> None:
    frame = compose_frame(Layout.GRID, [ALICE, BOB], 320, 180)
    assert frame.shape == (180, 320, 3) and frame.dtype == np.uint8
    left, right = tile_rects(Layout.GRID, 2, 320, 180)
    assert tuple(frame[90, 80]) == participant_color("alice")
    assert tuple(frame[90, 240]) == participant_color("bob")
    assert tuple(frame[0, 0]) == BACKGROUND
    assert tuple(frame[90, 160]) == BACKGROUND  # the gap between the two tiles
    # the name is drawn in white near the bottom-left of its tile
    label = frame[left.y + left.height // 2 :, left.x : left.x + left.width // 2]
    assert np.any(np.all(label >= 240, axis=-1))
    upper = frame[: left.y + left.height // 2, : left.x + left.width]
    assert not np.any(np.all(upper >= 240, axis=-1))
    assert right.x > left.x


def test_compose_frame_without_participants_is_background() -> None:
    frame = compose_frame(Layout.SPEAKER, [], 64, 36)
    assert np.all(frame == np.array(BACKGROUND, dtype=np.uint8))


def test_long_names_never_cover_the_tile_centre() -> None:
    name = "A very long display name that would never fit in a small tile " * 3
    frame = compose_frame(Layout.GRID, [("x", name), ("y", name), ("z", name)], 320, 180)
    for tile, key in zip(tile_rects(Layout.GRID, 3, 320, 180), "xyz", strict=True):
        cx, cy = tile.x + tile.width // 2, tile.y + tile.height // 2
        assert tuple(frame[cy, cx]) == participant_color(key)


# --- rendered files ------------------------------------------------------------


def test_render_file_produces_a_valid_mp4(tmp_path: Path) -> None:
    path = tmp_path / "call.mp4"
    render_file(path, Layout.GRID, [ALICE, BOB, CAROL], SMALL, duration_s=2.0)
    info = probe_recording(path)
    assert info.container == "mp4"
    assert info.video_codec == "h264" and info.audio_codec == "aac"
    assert (info.width, info.height) == (320, 180)
    assert info.framerate == pytest.approx(10)
    assert info.duration_s == pytest.approx(2.0, abs=0.1)


def test_grid_and_speaker_layouts_show_participants_where_the_layout_says(
    tmp_path: Path,
) -> None:
    grid, speaker, single = (tmp_path / f"{n}.mp4" for n in ("grid", "speaker", "single"))
    render_file(grid, Layout.GRID, [ALICE, BOB], SMALL, duration_s=1.0)
    render_file(speaker, Layout.SPEAKER, [ALICE, BOB], SMALL, duration_s=1.0)
    render_file(single, Layout.SINGLE_SPEAKER, [ALICE, BOB], SMALL, duration_s=1.0)
    a, b = participant_color("alice"), participant_color("bob")

    g = first_frame(grid)
    assert close_to(g[90, 80], a)  # left half's centre
    assert close_to(g[90, 240], b)  # right half's centre

    s = first_frame(speaker)
    assert close_to(s[90, 128], a)  # 40% of the width is inside the speaker tile
    assert close_to(s[90, 280], b)  # the strip on the right
    assert not close_to(g[90, 128 + 64], s[90, 128 + 64])  # 60%: B in grid, A in speaker

    one = first_frame(single)
    assert close_to(one[90, 80], a) and close_to(one[90, 280], a)


def test_video_is_not_static(tmp_path: Path) -> None:
    path = tmp_path / "call.mp4"
    render_file(path, Layout.GRID, [ALICE], SMALL, duration_s=1.0)
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 10
    assert not np.array_equal(frames[0][-4:], frames[-1][-4:])  # progress bar moved
    # ...while the tiles themselves stay put
    assert np.abs(frames[0][:-8].astype(int) - frames[-1][:-8]).max() <= 4


def test_each_participant_is_heard_as_a_distinct_tone(tmp_path: Path) -> None:
    path = tmp_path / "call.mp4"
    render_file(path, Layout.GRID, [ALICE, BOB], SMALL, duration_s=1.0)
    with av.open(str(path)) as container:
        rate = container.streams.audio[0].rate
        samples = np.concatenate([f.to_ndarray().mean(axis=0) for f in container.decode(audio=0)])
    assert len(samples) == pytest.approx(rate, rel=0.03)
    assert 0.05 < np.max(np.abs(samples)) < 0.9  # audible, not clipping
    spectrum = np.abs(np.fft.rfft(samples))
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    peaks = sorted(round(float(f)) for f in freqs[np.argsort(spectrum)[-2:]])
    assert peaks == [pytest.approx(440, abs=3), pytest.approx(660, abs=3)]


@pytest.mark.parametrize(("profile", "label"), [("baseline", "Baseline"), ("main", "Main"), ("high", "High")])
def test_spec_profile_and_keyframe_interval_are_honoured(tmp_path: Path, profile: str, label: str) -> None:
    path = tmp_path / "call.mp4"
    spec = RenderSpec(
        width=320,
        height=180,
        framerate=10,
        video_bitrate_kbps=300,
        keyframe_interval_s=0.5,
        h264_profile=profile,
    )
    render_file(path, Layout.SPEAKER, [ALICE, BOB], spec, duration_s=2.0)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        tagged = stream.codec_context.profile or ""
        assert tagged == label or tagged == f"Constrained {label}"
        keyframes = [
            float(p.pts * p.time_base)
            for p in container.demux(stream)
            if p.size and p.is_keyframe and p.pts is not None and p.time_base
        ]
    assert keyframes == pytest.approx([0.0, 0.5, 1.0, 1.5])


def test_audio_only_recording_is_ogg_opus_without_video(tmp_path: Path) -> None:
    path = tmp_path / "call.ogg"
    render_file(path, Layout.GRID, [ALICE, BOB], SMALL, duration_s=1.5, audio_only=True)
    info = probe_recording(path, kind="audio")
    assert info.container == "ogg" and info.audio_codec == "opus"
    assert info.video_codec is None and info.width is None
    assert info.duration_s == pytest.approx(1.5, abs=0.05)
    with av.open(str(path)) as container:
        assert container.streams.audio[0].rate == 48000
        assert not container.streams.video
    with pytest.raises(InvalidMedia) as excinfo:
        probe_recording(path, kind="video")
    assert excinfo.value.code == "missing_video"  # Ogg may carry video (.ogv), but this one has none
