"""Live feeds as the recorder keeps them: frames by capture time, audio resampled to 48 kHz, bounded memory."""

from __future__ import annotations

import gc
import logging
import threading
import time

import av
import numpy as np
import numpy.typing as npt
import pytest

from callrec.media.stage import SAMPLE_RATE, VIDEO_KEEP_FRAMES, Feed, Stage, Stages, fit_within


def solid(colour: tuple[int, int, int], width: int = 64, height: int = 36, fmt: str = "yuv420p") -> av.VideoFrame:
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[:] = colour
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    return frame if fmt == "rgb24" else frame.reformat(format=fmt)


def tone(hz: float, count: int, rate: int = SAMPLE_RATE, amplitude: float = 0.3, start: int = 0) -> av.AudioFrame:
    n = np.arange(start, start + count)
    samples = (amplitude * np.sin(2 * np.pi * hz * n / rate)).astype(np.float32).reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
    frame.sample_rate = rate
    return frame


def publish_feed(
    feed: Feed, colour: tuple[int, int, int], hz: float, stop: threading.Event, size: tuple[int, int] = (320, 180)
) -> None:
    """15 fps video and 20 ms audio frames, stamped with the capture instant as a WHIP publisher would."""
    frame = solid(colour, *size)
    start, n = time.monotonic(), 0
    while not stop.is_set():
        capture = start + n * 0.02
        feed.push_audio(tone(hz, 960, amplitude=0.2, start=n * 960), capture)
        if n % 10 in (0, 3, 7):
            feed.push_video(frame, capture)
        n += 1
        stop.wait(max(0.0, start + n * 0.02 - time.monotonic()))


def peak_hz(samples: npt.NDArray[np.float32], rate: int = SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


def colour_of(frame: av.VideoFrame) -> tuple[int, ...]:
    rgb = frame.to_ndarray(format="rgb24")
    return tuple(int(c) for c in rgb[rgb.shape[0] // 2, rgb.shape[1] // 2])


# --- video ------------------------------------------------------------------------


def test_the_latest_frame_captured_at_or_before_an_instant() -> None:
    feed = Feed("alice", "Alice", "user")
    assert feed.picture_at(10.0) is None and feed.last_media_s is None
    for i, colour in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
        feed.push_video(solid(colour), 10.0 + i * 0.1)
    assert feed.last_media_s is not None
    assert feed.picture_at(9.99) is None  # nothing captured that early
    for t, expected in [(10.0, (255, 0, 0)), (10.15, (0, 255, 0)), (10.2, (0, 0, 255)), (99.0, (0, 0, 255))]:
        picture = feed.picture_at(t)
        assert picture is not None
        assert np.allclose(colour_of(picture.frame), expected, atol=12), t


def test_a_capture_clock_that_jumps_back_replaces_the_newer_frames() -> None:
    feed = Feed("alice", "Alice", "user")
    feed.push_video(solid((255, 0, 0)), 10.0)
    feed.push_video(solid((0, 255, 0)), 10.5)
    feed.push_video(solid((0, 0, 255)), 10.2)  # sender-report mapping moved this publisher's clock back
    picture = feed.picture_at(11.0)
    assert picture is not None and np.allclose(colour_of(picture.frame), (0, 0, 255), atol=12)
    first = feed.picture_at(10.1)
    assert first is not None and np.allclose(colour_of(first.frame), (255, 0, 0), atol=12)


@pytest.mark.parametrize(
    ("size", "stored"),
    [
        ((3840, 2160), (1280, 720)),
        ((1080, 1920), (720, 1280)),
        ((2160, 3840), (720, 1280)),
        ((2560, 1080), (1280, 540)),
        ((641, 361), (640, 360)),
    ],
)
def test_large_or_odd_frames_are_stored_fitting_720p_with_their_aspect_ratio(
    size: tuple[int, int], stored: tuple[int, int]
) -> None:
    feed = Feed("alice", "Alice", "user")
    feed.push_video(solid((200, 40, 40), *size, fmt="rgb24"), 1.0)
    picture = feed.picture_at(1.0)
    assert picture is not None
    assert (picture.frame.width, picture.frame.height) == stored
    assert picture.frame.format.name == "yuv420p"
    assert np.allclose(colour_of(picture.frame), (200, 40, 40), atol=12)


def test_fit_within_keeps_the_aspect_ratio_in_even_sizes() -> None:
    assert fit_within(640, 480, 1280, 720) == (960, 720)
    assert fit_within(1920, 1080, 320, 180) == (320, 180)
    w, h = fit_within(1000, 3, 100, 100)
    assert w == 100 and h == 2


def test_a_flood_of_frames_keeps_a_bounded_number_of_the_newest() -> None:
    feed = Feed("alice", "Alice", "user")
    frame = solid((10, 200, 10), 320, 180)
    for i in range(5000):  # 5000 frames at 1000 fps
        feed.push_video(frame, 100.0 + i / 1000)
    kept = {p.seq for i in range(5000) if (p := feed.picture_at(100.0 + i / 1000)) is not None}
    assert len(kept) == VIDEO_KEEP_FRAMES
    newest = feed.picture_at(104.999)
    assert newest is not None and newest.capture_s == pytest.approx(104.999) and newest.seq == max(kept)
    assert feed.picture_at(104.5) is None  # long gone


def test_frames_older_than_a_second_behind_the_newest_are_dropped() -> None:
    feed = Feed("alice", "Alice", "user")
    frame = solid((10, 200, 10), 320, 180)
    for i in range(300):  # 10 s at 30 fps
        feed.push_video(frame, 100.0 + i / 30)
    kept = {p.seq for i in range(300) if (p := feed.picture_at(100.0 + i / 30)) is not None}
    assert 30 <= len(kept) <= 32


def test_bad_frames_are_dropped_with_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    feed = Feed("alice", "Alice", "user")
    feed.push_video(solid((0, 0, 255)), 1.0)
    with caplog.at_level(logging.WARNING, logger="callrec.media.stage"):
        feed.push_video(av.VideoFrame(1, 1, "yuv420p"), 2.0)  # too small to show
        feed.push_video(solid((255, 0, 0)), float("nan"))
        feed.push_video("not a frame", 3.0)  # type: ignore[arg-type]
        feed.push_audio(tone(440, 960), float("inf"))
        feed.push_audio(b"garbage", 3.0)  # type: ignore[arg-type]
    assert feed.bad_frames == 5
    assert len([r for r in caplog.records if r.name == "callrec.media.stage"]) == 1
    picture = feed.picture_at(10.0)
    assert picture is not None and np.allclose(colour_of(picture.frame), (0, 0, 255), atol=12)
    feed.push_audio(tone(440, 960), 5.0)  # still works afterwards
    assert feed.energy(5.02, 0.02) > 0.01


# --- audio ------------------------------------------------------------------------


def test_audio_is_resampled_to_48k_mono_and_placed_by_capture_time() -> None:
    feed = Feed("alice", "Alice", "user")
    # one second of a 1 kHz tone at 44.1 kHz stereo s16, in 20 ms frames captured from t = 50.0
    for i in range(50):
        samples = (0.5 * 32767 * np.sin(2 * np.pi * 1000 * (np.arange(882) + i * 882) / 44100)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(
            np.stack([samples, samples], axis=1).reshape(1, -1), format="s16", layout="stereo"
        )
        frame.sample_rate = 44100
        feed.push_audio(frame, 50.0 + i * 0.02)
    inside = feed.audio(50.2, SAMPLE_RATE // 2)
    assert abs(peak_hz(inside) - 1000) < 5
    assert 0.4 < float(np.max(np.abs(inside))) < 0.6
    assert not np.any(feed.audio(49.0, SAMPLE_RATE // 2))  # before it: silence
    assert not np.any(feed.audio(51.1, SAMPLE_RATE // 2))  # after it: silence
    assert feed.energy(50.5) > 0.1 and feed.energy(49.9) == 0.0


def test_a_gap_in_capture_times_is_silence() -> None:
    feed = Feed("alice", "Alice", "user")
    for i in range(10):
        feed.push_audio(tone(440, 960, start=i * 960), 20.0 + i * 0.02)
    for i in range(10):  # 0.3 s later: packets were lost
        feed.push_audio(tone(440, 960, start=i * 960), 20.5 + i * 0.02)
    assert np.max(np.abs(feed.audio(20.05, 4800))) > 0.25
    assert not np.any(feed.audio(20.21, SAMPLE_RATE * 28 // 100))
    assert np.max(np.abs(feed.audio(20.55, 4800))) > 0.25


def test_audio_far_in_the_future_then_back_keeps_working() -> None:
    feed = Feed("alice", "Alice", "user")
    feed.push_audio(tone(440, 960), 1e6)
    feed.push_audio(tone(440, 960), 30.0)
    assert np.max(np.abs(feed.audio(30.0, 960))) > 0.25
    assert not np.any(feed.audio(1e6, 960))


def test_a_flood_of_audio_keeps_the_ring_size() -> None:
    feed = Feed("alice", "Alice", "user")
    for i in range(3000):  # 60 s
        feed.push_audio(tone(440, 960, start=i * 960), 10.0 + i * 0.02)
    assert feed._ring.data.nbytes <= 4 * SAMPLE_RATE * 4 * 1.01
    assert np.max(np.abs(feed.audio(69.0, 960))) > 0.25
    assert not np.any(feed.audio(20.0, 960))  # long past: forgotten


# --- stages -----------------------------------------------------------------------


def test_a_stage_lists_its_open_feeds_in_join_order() -> None:
    stage = Stage("room")
    alice, bob, carol = Feed("a", "Alice", "user"), Feed("b", "Bob", "user"), Feed("c", "Carol", "guest")
    for feed in (alice, bob, carol):
        stage.add(feed)
    stage.add(alice)  # once only
    assert stage.feeds() == [alice, bob, carol]
    stage.remove(bob)
    assert stage.feeds() == [alice, carol]
    carol.close()
    assert stage.feeds() == [alice]
    carol.push_video(solid((1, 2, 3)), 1.0)  # ignored, no error
    assert carol.picture_at(2.0) is None


def test_stages_are_per_room_and_dropped_when_empty_and_unused() -> None:
    stages = Stages()
    stage = stages.get("room-a")
    assert stages.get("room-a") is stage and stages.get("room-b") is not stage
    feed = Feed("a", "Alice", "user")
    stage.add(feed)
    del stage
    gc.collect()
    assert stages.get("room-a").feeds() == [feed]  # a stage with feeds stays
    feed.close()
    gc.collect()
    assert len(stages) == 0
