"""Capture times of received RTP media on the recorder's local clock (`time.monotonic()` seconds).

A frame's RTP timestamp says when the sender captured it on that track's own media clock. The sender's RTCP
Sender Reports tie each track's media clock to its wall clock (NTP), the same for all its tracks, so audio and
video of one publisher map onto one timeline. That timeline is tied to the local clock by ONE offset per
publisher (`PublisherClock`): the smallest `arrival - capture` seen, i.e. the fastest path through network,
jitter buffer and decoder. The offset may rise slowly (`drift_per_s`) so that clocks running at slightly
different rates do not leave it behind for ever.

Before a track's first Sender Report its frames are placed by its own smallest `arrival - media time`; when the
first report comes, the track's history is folded into the publisher's offset, so the switch moves capture
times by no more than the network jitter.
"""

from __future__ import annotations

from fractions import Fraction

WRAP = 1 << 32
NTP_UNIT = float(1 << 32)  # NTP timestamps are 32.32 fixed point seconds
DRIFT_PER_S = 2e-4  # 200 ppm: more than two sane clocks drift apart


def rtp_diff(a: int, b: int) -> int:
    """`a - b` for 32-bit RTP timestamps that may have wrapped (the nearer way round)."""
    d = (a - b) % WRAP
    return d - WRAP if d >= WRAP // 2 else d


class LeakyMin:
    """The minimum of the samples seen, allowed to rise by `rise_per_s` per second of `now` without a lower one."""

    def __init__(self, rise_per_s: float = DRIFT_PER_S) -> None:
        self.rise_per_s = rise_per_s
        self.value: float | None = None
        self._at = 0.0

    def add(self, sample: float, now: float) -> float:
        if self.value is None:
            self.value = sample
        else:
            self.value = min(self.value + self.rise_per_s * max(0.0, now - self._at), sample)
        self._at = max(self._at, now)
        return self.value


class PublisherClock:
    """The offset `local clock - sender NTP clock` of one publisher, shared by all its tracks."""

    def __init__(self, drift_per_s: float = DRIFT_PER_S) -> None:
        self.offset = LeakyMin(drift_per_s)
        self.drift_per_s = drift_per_s

    def track(self) -> TrackClock:
        return TrackClock(self)


class TrackClock:
    """One received track: its latest Sender Report and its own fallback offset."""

    def __init__(self, publisher: PublisherClock) -> None:
        self.publisher = publisher
        self.base = LeakyMin(publisher.drift_per_s)  # min(arrival - media time) of this track
        self.report: tuple[float, int] | None = None  # (sender NTP seconds, RTP timestamp) of the latest SR
        self.last: tuple[float, float] | None = None  # (capture, arrival) of the latest frame

    def sender_report(self, ntp_timestamp: int, rtp_timestamp: int) -> None:
        self.report = (ntp_timestamp / NTP_UNIT, rtp_timestamp % WRAP)

    def capture(self, pts: int | None, time_base: Fraction | None, origin: int | None, arrival: float) -> float:
        """The local-clock capture time of a frame that arrived at `arrival`.

        `pts` counts in `time_base` (1 / the RTP clock rate) from `origin`, the RTP timestamp of the track's
        first frame (`origin + pts` is the frame's RTP timestamp modulo 2**32).
        """
        if pts is None or time_base is None or time_base <= 0:
            # No media time: keep the latency of the previous frame (or call it captured as it arrived).
            capture = arrival if self.last is None else arrival - (self.last[1] - self.last[0])
            self.last = (capture, arrival)
            return capture
        media_s = float(pts * time_base)
        base = self.base.add(arrival - media_s, arrival)
        if self.report is None or origin is None or time_base.numerator != 1:
            capture = media_s + base
        else:
            report_ntp, report_rtp = self.report
            rate = time_base.denominator
            ntp_s = report_ntp + rtp_diff((origin + pts) % WRAP, report_rtp) / rate
            # `base - (ntp_s - media_s)` is this track's whole history on the sender's NTP clock: its minimum
            # arrival - capture. With one track or many, the publisher's offset is the least of them.
            offset = self.publisher.offset.add(base - (ntp_s - media_s), arrival)
            capture = ntp_s + offset
        self.last = (capture, arrival)
        return capture
