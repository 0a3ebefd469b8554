"""Compositing live feeds per layout, active speaker detection, and real-time room recordings decoded back."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from callrec.domain.layout import Layout, RenderSpec
from callrec.media.compose import Compositor, Entry, SpeakerTracker
from callrec.media.live import RoomRecording, soft_clip
from callrec.media.stage import SAMPLE_RATE, Feed, Stage
from callrec.media.tiles import BACKGROUND, Tile, participant_color, tile_rects
from tests.unit.test_stage import publish_feed, solid, tone

W, H = 640, 360
RED, GREEN, BLUE = (220, 30, 30), (30, 200, 30), (30, 30, 220)
Rgb = npt.NDArray[np.uint8]


def close_to(pixel: npt.ArrayLike, expected: tuple[int, int, int], tolerance: int = 30) -> bool:
    return bool(np.all(np.abs(np.asarray(pixel, dtype=int) - np.asarray(expected)) <= tolerance))


def rgb(frame: av.VideoFrame) -> Rgb:
    return np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)


def centre(tile: Tile) -> tuple[int, int]:
    return tile.y + tile.height // 2, tile.x + tile.width // 2


def feed_with(colour: tuple[int, int, int], key: str, at: float = 1.0, size: tuple[int, int] = (320, 180)) -> Feed:
    feed = Feed(key, key.title(), "user")
    feed.push_video(solid(colour, *size), at)
    return feed


def speak(feed: Feed, start_s: float, seconds: float, hz: float = 440.0, amplitude: float = 0.3) -> None:
    for i in range(round(seconds / 0.02)):
        feed.push_audio(tone(hz, 960, amplitude=amplitude, start=i * 960), start_s + i * 0.02)


# --- tiles ------------------------------------------------------------------------


def test_grid_puts_each_feed_in_its_tile_and_reflows_as_feeds_join_and_leave() -> None:
    compositor = Compositor(Layout.GRID, W, H)
    red, green, blue = feed_with(RED, "red"), feed_with(GREEN, "green"), feed_with(BLUE, "blue")
    picture = rgb(compositor.frame(2.0, [red, green]))
    left, right = tile_rects(Layout.GRID, 2, W, H)
    assert close_to(picture[centre(left)], RED) and close_to(picture[centre(right)], GREEN)

    picture = rgb(compositor.frame(2.1, [red, green, blue]))  # blue joins: 2 x 2 grid, last row centred
    tiles = tile_rects(Layout.GRID, 3, W, H)
    for tile, colour in zip(tiles, [RED, GREEN, BLUE], strict=True):
        assert close_to(picture[centre(tile)], colour)
    assert close_to(picture[H * 3 // 4, 10], BACKGROUND, 4)

    picture = rgb(compositor.frame(2.2, [red, blue]))  # green leaves
    assert close_to(picture[centre(left)], RED) and close_to(picture[centre(right)], BLUE)


def test_pictures_are_letterboxed_never_stretched() -> None:
    compositor = Compositor(Layout.GRID, W, H)
    portrait = feed_with(RED, "tall", size=(180, 320))
    picture = rgb(compositor.frame(2.0, [portrait]))
    [tile] = tile_rects(Layout.GRID, 1, W, H)
    row = picture[H // 4]  # above the name label
    red = np.nonzero([close_to(p, RED) for p in row])[0]
    width = red.max() - red.min() + 1
    column = picture[:, W // 2]
    height = sum(close_to(p, RED) for p in column)
    assert abs(width / height - 180 / 320) < 0.03  # the aspect ratio of the source
    assert height >= tile.height - 4
    assert close_to(picture[H // 4, tile.x + 20], BACKGROUND, 4)  # bars at the sides
    assert close_to(picture[H // 4, W // 2], RED)


def test_names_are_drawn_at_the_bottom_left_of_tiles() -> None:
    compositor = Compositor(Layout.GRID, W, H)
    picture = rgb(compositor.frame(2.0, [feed_with(BLUE, "alice")]))
    [tile] = tile_rects(Layout.GRID, 1, W, H)
    label = picture[tile.y + tile.height * 3 // 4 : tile.y + tile.height, tile.x : tile.x + tile.width // 3]
    assert np.any(np.all(label >= 220, axis=-1))  # white text
    assert np.any(np.all(label <= 40, axis=-1))  # its black outline
    upper = picture[tile.y : tile.y + tile.height // 2, tile.x : tile.x + tile.width]
    assert not np.any(np.all(upper >= 220, axis=-1))


def test_a_name_is_drawn_on_the_picture_not_on_the_bars_of_a_tall_strip_tile() -> None:
    compositor = Compositor(Layout.SPEAKER, W, H)
    picture = rgb(compositor.frame(2.0, [feed_with(RED, "red"), feed_with(BLUE, "bob")]))
    _, strip = tile_rects(Layout.SPEAKER, 2, W, H)
    assert strip.height > strip.width  # a 16:9 camera sits in its middle, bars above and below
    rows = [y for y in range(strip.y, strip.y + strip.height) if close_to(picture[y, strip.x + strip.width // 2], BLUE)]
    top, bottom = min(rows), max(rows)
    assert bottom - top < strip.height // 2
    on_picture = picture[(top + bottom) // 2 : bottom + 1, strip.x : strip.x + strip.width // 2]
    assert np.any(np.all(on_picture >= 220, axis=-1))  # the name, white, on the lower part of the picture
    below = picture[bottom + 2 : strip.y + strip.height, strip.x : strip.x + strip.width]
    assert not np.any(np.all(below >= 220, axis=-1))  # nothing written on the bar under it


def test_participants_without_video_get_a_name_tile_and_leave_when_their_feed_leaves() -> None:
    compositor = Compositor(Layout.GRID, W, H, [("alice", "Alice"), ("bob", "Bob")])
    bob = feed_with(BLUE, "bob")
    picture = rgb(compositor.frame(2.0, [bob]))
    left, right = tile_rects(Layout.GRID, 2, W, H)
    assert close_to(picture[centre(left)], participant_color("alice"), 8)  # Alice: name tile
    assert close_to(picture[centre(right)], BLUE)  # Bob's feed takes his place
    alice_voice_only = Feed("alice", "Alice", "user")
    speak(alice_voice_only, 1.0, 0.2)
    picture = rgb(compositor.frame(2.1, [alice_voice_only, bob]))
    assert close_to(picture[centre(left)], participant_color("alice"), 8)  # a feed without video: name tile
    picture = rgb(compositor.frame(2.2, [bob]))  # Alice's feed left: so did she
    [alone] = tile_rects(Layout.GRID, 1, W, H)
    assert close_to(picture[centre(alone)], BLUE)


def test_the_last_frame_is_held_through_gaps_and_capture_times_decide() -> None:
    compositor = Compositor(Layout.GRID, W, H)
    feed = feed_with(RED, "alice", at=1.0)
    feed.push_video(solid(BLUE), 3.0)
    [tile] = tile_rects(Layout.GRID, 1, W, H)
    assert close_to(rgb(compositor.frame(0.5, [feed]))[centre(tile)], participant_color("alice"), 8)  # not yet
    assert close_to(rgb(compositor.frame(2.9, [feed]))[centre(tile)], RED)  # held for 1.9 s
    assert close_to(rgb(compositor.frame(3.0, [feed]))[centre(tile)], BLUE)
    assert close_to(rgb(compositor.frame(60.0, [feed]))[centre(tile)], BLUE)


def test_a_participant_who_reconnects_shows_the_new_picture_not_the_old_one() -> None:
    compositor = Compositor(Layout.GRID, W, H)
    old = Feed("alice", "Alice", "user")
    for i in range(40):  # a long-lived session: many pictures
        old.push_video(solid(RED), 1.0 + i / 30)
    [tile] = tile_rects(Layout.GRID, 1, W, H)
    assert close_to(rgb(compositor.frame(2.5, [old]))[centre(tile)], RED)
    new = feed_with(BLUE, "alice", at=3.0)  # the same participant publishes again: a new feed, few pictures
    assert close_to(rgb(compositor.frame(3.1, [new]))[centre(tile)], BLUE)


# --- the active speaker -------------------------------------------------------------


def test_speaker_layout_shows_the_active_speaker_large_within_1_5_s() -> None:
    compositor = Compositor(Layout.SPEAKER, W, H)
    alice, bob = feed_with(RED, "alice", at=0.0), feed_with(BLUE, "bob", at=0.0)
    speak(alice, 0.0, 3.0, 440)
    speak(bob, 3.0, 3.0, 660)  # Bob takes over at t = 3 s, Alice stops
    big = tile_rects(Layout.SPEAKER, 2, W, H)[0]
    shown = {}
    for n in range(0, 180):
        t = n / 30
        shown[t] = rgb(compositor.frame(t, [alice, bob]))[centre(big)]
    assert all(close_to(p, RED) for t, p in shown.items() if 0.5 <= t < 3.0)
    assert all(close_to(p, BLUE) for t, p in shown.items() if t >= 4.5)
    switch = min(t for t, p in shown.items() if t >= 3.0 and close_to(p, BLUE))
    assert switch - 3.0 <= 1.5


def test_the_speaker_does_not_flap() -> None:
    tracker = SpeakerTracker()
    alice, bob = Feed("alice", "Alice", "user"), Feed("bob", "Bob", "user")
    entries = [Entry("alice", "Alice", alice), Entry("bob", "Bob", bob)]
    # they alternate every 200 ms for 10 s
    for k in range(50):
        speak(alice if k % 2 == 0 else bob, k * 0.2, 0.2, 440 if k % 2 == 0 else 660)
    speakers = [tracker.update(n / 30, entries) for n in range(300)]
    switches = sum(1 for a, b in zip(speakers, speakers[1:], strict=False) if a != b)
    assert switches <= 10  # at most one a second

    # a short cough does not take over
    tracker = SpeakerTracker()
    carol = Feed("carol", "Carol", "user")
    speak(alice, 20.0, 3.0)
    speak(carol, 21.5, 0.08, 880, amplitude=0.6)
    entries.append(Entry("carol", "Carol", carol))
    assert {tracker.update(20 + n / 30, entries) for n in range(90)} == {"alice"}


def test_single_speaker_shows_only_the_speaker() -> None:
    compositor = Compositor(Layout.SINGLE_SPEAKER, W, H)
    alice, bob = feed_with(RED, "alice", at=0.0), feed_with(BLUE, "bob", at=0.0)
    speak(bob, 0.0, 2.0)
    for n in range(60):
        compositor.frame(n / 30, [alice, bob])
    picture = rgb(compositor.frame(2.0, [alice, bob]))
    assert all(close_to(picture[y, x], BLUE) for y, x in [(H // 2, W // 2), (H // 4, W // 4), (H // 4, W * 3 // 4)])


# --- audio ------------------------------------------------------------------------


def test_soft_clip_keeps_quiet_audio_and_bounds_loud_audio() -> None:
    quiet = np.linspace(-0.7, 0.7, 101, dtype=np.float32)
    assert np.array_equal(soft_clip(quiet), quiet)
    loud = np.linspace(-3, 3, 101, dtype=np.float32)
    clipped = soft_clip(loud)
    assert np.all(np.abs(clipped) <= 1.0) and np.all(np.diff(clipped) >= 0)


# --- real-time recordings -------------------------------------------------------------


def test_a_room_recording_holds_each_feed_in_its_tile_and_every_voice(tmp_path: Path) -> None:
    stage, stop = Stage("room"), threading.Event()
    alice, bob = Feed("alice", "Alice", "user"), Feed("bob", "Bob", "user")
    stage.add(alice)
    stage.add(bob)
    spec = RenderSpec(width=W, height=H, framerate=15, video_bitrate_kbps=600)
    path = tmp_path / "room.mp4"
    recording = RoomRecording(path, Layout.GRID, spec, stage, [("alice", "Alice"), ("carol", "Carol")])
    publishers = [
        threading.Thread(target=publish_feed, args=(alice, RED, 440.0, stop)),
        threading.Thread(target=publish_feed, args=(bob, BLUE, 1250.0, stop)),
    ]
    for thread in publishers:
        thread.start()
    try:
        recording.start()
        began = time.monotonic()
        time.sleep(3.0)
        duration = recording.stop()
        wall = time.monotonic() - began
    finally:
        stop.set()
        for thread in publishers:
            thread.join()
    assert recording.error is None
    assert 2.9 <= duration <= wall
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.audio[0].codec_context.name == "aac"
        pictures = [rgb(f) for f in container.decode(video=0)]
    with av.open(str(path)) as container:
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    assert len(pictures) == recording.frames >= 40
    tiles = tile_rects(Layout.GRID, 3, W, H)  # Alice (placeholder with a feed), Carol (name tile), Bob
    for picture in pictures[len(pictures) // 3 :]:
        assert close_to(picture[centre(tiles[0])], RED)
        assert close_to(picture[centre(tiles[1])], participant_color("carol"), 12)
        assert close_to(picture[centre(tiles[2])], BLUE)
    middle = audio[SAMPLE_RATE : 2 * SAMPLE_RATE]
    spectrum = np.abs(np.fft.rfft(middle * np.hanning(len(middle))))
    freqs = np.fft.rfftfreq(len(middle), 1 / SAMPLE_RATE)
    strongest = sorted(float(freqs[i]) for i in np.argsort(spectrum)[-2:])
    assert abs(strongest[0] - 440) < 5 and abs(strongest[1] - 1250) < 5
    assert np.max(np.abs(audio)) < 1.0


@pytest.mark.parametrize("audio_only", [True, False])
def test_a_room_without_feeds_records_name_tiles_and_silence(tmp_path: Path, audio_only: bool) -> None:
    spec = RenderSpec(width=320, height=180, framerate=10, video_bitrate_kbps=300, audio_sample_rate=44100)
    path = tmp_path / ("room.ogg" if audio_only else "room.mp4")
    recording = RoomRecording(path, Layout.SPEAKER, spec, Stage("room"), [("alice", "Alice")], audio_only=audio_only)
    recording.start()
    began = time.monotonic()
    time.sleep(1.0)
    duration = recording.stop()
    assert 0.9 <= duration <= time.monotonic() - began
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == ("opus" if audio_only else "aac")
        assert stream.rate == (48000 if audio_only else 44100)
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    assert len(audio) >= 0.9 * stream.rate and np.max(np.abs(audio)) < 1e-3  # silence, not tones
    if not audio_only:
        with av.open(str(path)) as container:
            picture = rgb(next(container.decode(video=0)))
        assert close_to(picture[90, 160], participant_color("alice"), 12)


@pytest.mark.parametrize("fragmented", [False, True])
def test_a_recording_stopped_at_once_still_holds_a_picture(tmp_path: Path, fragmented: bool) -> None:
    spec = RenderSpec(width=320, height=180, framerate=10, video_bitrate_kbps=300, audio_sample_rate=44100)
    path = tmp_path / "room.mp4"
    recording = RoomRecording(path, Layout.GRID, spec, Stage("room"), [("alice", "Alice")], fragmented=fragmented)
    recording.start()
    recording.stop()  # an API start and stop a few milliseconds apart: less than half a frame was recorded

    with av.open(str(path)) as container:
        assert len(container.streams.video) == 1  # a file with no video is refused when it is stored
        picture = rgb(next(container.decode(video=0)))
    assert close_to(picture[90, 160], participant_color("alice"), 12)
