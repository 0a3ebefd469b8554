"""Capture times from RTP timestamps and Sender Reports: one timeline per publisher, whatever the network does."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

from callrec.recorder.rtpclock import NTP_UNIT, WRAP, LeakyMin, PublisherClock, TrackClock, rtp_diff

AUDIO = Fraction(1, 48000)
VIDEO = Fraction(1, 90000)
SENDER_NTP_AT_ZERO = 3_900_000_000.0  # the sender's wall clock when it captured its first frame (NTP seconds)
LOCAL_AT_ZERO = 500.0  # the recorder's monotonic clock at that same instant


class Sender:
    """One track as the network delivers it: a random RTP origin, Sender Reports, some delay per frame."""

    def __init__(self, rate: int, origin: int, start_s: float = 0.0) -> None:
        self.rate = rate
        self.rtp_origin = origin  # RTP timestamp at capture instant 0
        self.first_rtp = (origin + round(start_s * rate)) % WRAP  # aiortc's origin: the first frame's timestamp

    def rtp(self, t: float) -> int:
        return (self.rtp_origin + round(t * self.rate)) % WRAP

    def report(self, t: float) -> tuple[int, int]:
        return round((SENDER_NTP_AT_ZERO + t) * NTP_UNIT), self.rtp(t)

    def pts(self, t: float) -> int:
        return (self.rtp(t) - self.first_rtp) % WRAP


def test_rtp_diff_takes_the_near_way_round_a_wrap() -> None:
    assert rtp_diff(5, WRAP - 5) == 10
    assert rtp_diff(WRAP - 5, 5) == -10
    assert rtp_diff(1000, 10) == 990


def test_before_a_sender_report_a_track_keeps_its_fastest_latency() -> None:
    track = PublisherClock().track()
    delays = [0.080, 0.050, 0.120, 0.050, 0.200]
    captures = [track.capture(round(i * 0.02 * 48000), AUDIO, 1234, LOCAL_AT_ZERO + i * 0.02 + d) for i, d in
                enumerate(delays)]  # fmt: skip
    # From the second frame on, jitter does not move frames: 20 ms apart, at the fastest arrival's latency.
    assert captures[1:] == pytest.approx([LOCAL_AT_ZERO + i * 0.02 + 0.050 for i in range(1, 5)], abs=1e-4)


def test_audio_and_video_of_one_publisher_share_one_timeline_whatever_their_delays() -> None:
    rng = random.Random(7)
    publisher = PublisherClock()
    audio_tx, video_tx = Sender(48000, 4_000_000_000), Sender(90000, 17, start_s=0.3)
    audio, video = publisher.track(), publisher.track()
    audio.sender_report(*audio_tx.report(0.0))
    video.sender_report(*video_tx.report(0.3))
    events: list[tuple[float, str, float]] = []  # arrival, kind, capture instant (since the sender's zero)
    for i in range(500):  # 10 s of 20 ms audio frames: 40 ms and up to 100 ms of jitter
        events.append((LOCAL_AT_ZERO + i * 0.02 + 0.040 + rng.uniform(0, 0.1), "audio", i * 0.02))
    for i in range(145):  # 15 fps video from 0.3 s: a slower path, more jitter
        events.append((LOCAL_AT_ZERO + 0.3 + i / 15 + 0.150 + rng.uniform(0, 0.3), "video", 0.3 + i / 15))
    results: list[tuple[str, float, float]] = []  # kind, true capture (local), computed
    for arrival, kind, t in sorted(events):
        tx, track, base = (audio_tx, audio, AUDIO) if kind == "audio" else (video_tx, video, VIDEO)
        if kind == "audio" and round(t / 0.02) % 25 == 0:
            track.sender_report(*tx.report(t))
        results.append((kind, LOCAL_AT_ZERO + t, track.capture(tx.pts(t), base, tx.first_rtp, arrival)))
    # Both tracks sit on one timeline: the true capture instant plus one latency, the same for audio and video
    # (it only settles lower as faster arrivals are seen), never the video path's own, slower latency.
    offsets = [(kind, computed - true) for kind, true, computed in results if true > LOCAL_AT_ZERO + 0.5]
    pairs = [(a[1], v[1]) for a, v in zip(offsets, offsets[1:], strict=False) if (a[0], v[0]) == ("audio", "video")]
    assert len(pairs) > 100
    assert all(abs(video - audio) < 0.001 for audio, video in pairs)
    assert all(0.039 < offset < 0.045 for _, offset in offsets)


def test_an_rtp_timestamp_wrap_keeps_capture_times_continuous() -> None:
    track = PublisherClock().track()
    tx = Sender(90000, WRAP - 45000)  # wraps after half a second
    track.sender_report(*tx.report(0.0))
    origin = tx.first_rtp
    captures = []
    for i in range(30):
        t = i / 15
        pts = tx.pts(t)
        unwrapped = pts if pts >= 0 else pts + WRAP
        captures.append(track.capture(unwrapped, VIDEO, origin, LOCAL_AT_ZERO + t + 0.05))
    steps = [b - a for a, b in zip(captures, captures[1:], strict=False)]
    assert steps == pytest.approx([1 / 15] * 29, abs=1e-6)


def test_aiortc_origin_moves_down_on_wrap_and_gives_the_same_times() -> None:
    # aiortc lowers the origin by 2**32 when the timestamp wraps, so pts keeps growing past 2**32 - origin.
    track = PublisherClock().track()
    first = WRAP - 9000
    track.sender_report(round(SENDER_NTP_AT_ZERO * NTP_UNIT), first)
    before = track.capture(0, VIDEO, first, LOCAL_AT_ZERO + 0.05)
    after = track.capture(18000, VIDEO, first - WRAP, LOCAL_AT_ZERO + 0.25)
    assert after - before == pytest.approx(0.2)


def test_a_frame_without_pts_keeps_the_previous_latency() -> None:
    track = TrackClock(PublisherClock())
    assert track.capture(None, None, None, 10.0) == 10.0
    track.capture(0, VIDEO, 0, 20.0)
    track.capture(9000, VIDEO, 0, 20.15)  # 50 ms slower than the first
    assert track.capture(None, VIDEO, 0, 21.0) == pytest.approx(21.0 - 0.05, abs=1e-4)


def test_the_offset_rises_only_slowly_without_a_lower_sample() -> None:
    low = LeakyMin(rise_per_s=1e-3)
    assert low.add(1.0, 0.0) == 1.0
    assert low.add(5.0, 10.0) == pytest.approx(1.01)
    assert low.add(0.5, 11.0) == 0.5
