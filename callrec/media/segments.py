"""Crash-proof recordings: joining the parts of a recording into one file.

While a recorder writes a fragmented MP4 (or an Ogg) with `render.open_output(..., fragmented=True)`, its
`recorder.shipping.SegmentShipper` uploads the bytes the file gained every few seconds as numbered chunk objects.
The chunks uploaded so far, concatenated, are a prefix of the file. If the recorder dies, another one records the
rest as a new part; `join_parts` remuxes the parts (each its chunks concatenated, possibly cut at any byte) into one
normal file, and reports where the parts meet and how much wall-clock time is missing there.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from av.audio.stream import AudioStream
from av.container import InputContainer, OutputContainer
from av.packet import Packet
from av.stream import Stream
from av.video.stream import VideoStream

log = logging.getLogger(__name__)

PEEK_PACKETS = 2000  # a part's start is the earliest of its first packets, looked at until every stream had one


@dataclass
class PartInfo:
    origin_ms: int  # wall clock (epoch ms) of the part's media time 0
    recorder: str  # which recorder recorded it


@dataclass
class Gap:
    offset_s: float  # media time in the joined file where the gap is (the end of the part before)
    duration_s: float  # wall-clock time missing there


@dataclass
class Joined:
    duration_s: float  # media duration of the joined file
    gaps: list[Gap]
    parts: int  # parts that held usable media


def join_parts(parts: Sequence[tuple[PartInfo, Path]], out: Path, *, audio_only: bool) -> Joined:
    """Remuxes parts (in recording order) into `out`, an MP4 with +faststart or (audio_only) an Ogg, without
    re-encoding. Blocking: call it on a thread.

    Each part is a part's chunks concatenated, possibly cut at any byte: its tail is cut at the last complete
    packet, and a part without any usable packet is skipped. Part k + 1 starts where part k ends; the wall-clock
    time between them (origin_{k+1} - (origin_k + end of part k's media)) is reported as a Gap when positive.
    The streams keep the parameters of the first usable part; a later part that does not match them raises
    ValueError, as does having no usable part at all.
    """
    joiner = _Joiner(Path(out), audio_only)
    gaps: list[Gap] = []
    previous: tuple[PartInfo, Fraction] | None = None  # the last usable part and its end (part media time)
    try:
        for info, path in parts:
            boundary = joiner.offset
            end = joiner.add(Path(path))
            if end is None:
                log.warning("part of %s at %s holds no usable media: skipped", info.recorder, path)
                continue
            if previous is not None:
                missing_ms = info.origin_ms - (previous[0].origin_ms + float(previous[1]) * 1000)
                if missing_ms > 0:
                    gaps.append(Gap(offset_s=float(boundary), duration_s=missing_ms / 1000))
            previous = (info, end)
        if joiner.parts == 0:
            raise ValueError("no part holds usable media")
        joiner.close()
    except BaseException:
        joiner.abort()
        raise
    return Joined(duration_s=float(joiner.offset), gaps=gaps, parts=joiner.parts)


class _Joiner:
    """The joined output, opened with the streams of the first usable part."""

    def __init__(self, out: Path, audio_only: bool) -> None:
        self.out, self.audio_only = out, audio_only
        self.kinds = ("audio",) if audio_only else ("video", "audio")
        self.container: OutputContainer | None = None
        self.streams: dict[str, Stream] = {}
        self.templates: dict[str, tuple[object, ...]] = {}
        self.last_dts: dict[str, Fraction] = {}  # per kind, in seconds of the joined file
        self.offset = Fraction(0)  # where the next part starts in the joined file (seconds)
        self.parts = 0

    def add(self, path: Path) -> Fraction | None:
        """Copies a part's packets after what is there; returns the end of its media (seconds of part media time),
        or None if it holds nothing usable."""
        try:
            source: InputContainer = av.open(str(path), mode="r")
        except (av.FFmpegError, OSError) as exc:
            if self.audio_only or not trim_to_fragments(path):
                log.info("cannot open part %s: %s", path, exc)
                return None
            return self.add(path)  # it opens once cut after its last complete fragment
        with source:
            found = {kind: _first(source, kind) for kind in self.kinds}
            inputs = {kind: stream for kind, stream in found.items() if stream is not None}
            if len(inputs) < len(found):
                log.info("part %s lacks a %s stream", path, " or ".join(self.kinds))
                return None
            for kind, stream in inputs.items():
                if kind in self.templates and _signature(stream) != self.templates[kind]:
                    raise ValueError(f"the {kind} of part {path} does not match the first part's: cannot remux them")
            packets = _packets(source, list(inputs.values()), path)
            head = list(itertools.islice(_until_each_stream(packets, len(inputs)), PEEK_PACKETS))
            if not head:
                return None
            # The first part keeps its timestamps; a later one starts (priming included) where the one before ends.
            start = min(_seconds(p.dts, p) for p in head)
            shift = self.offset - start if self.parts else Fraction(0)  # part media time + shift = joined time
            if self.container is None:
                self._open(inputs)
            kinds = {stream.index: kind for kind, stream in inputs.items()}
            end: Fraction | None = None
            for packet in itertools.chain(head, packets):
                packet_end = _seconds(packet.pts, packet) + _seconds(packet.duration or 0, packet)
                if self._copy(kinds[packet.stream.index], packet, shift):
                    end = packet_end if end is None else max(end, packet_end)
        if end is None:
            return None
        self.offset = shift + end
        self.parts += 1
        return end

    def _open(self, inputs: dict[str, Stream]) -> None:
        options = {} if self.audio_only else {"movflags": "+faststart"}
        fmt = "ogg" if self.audio_only else "mp4"
        self.container = av.open(str(self.out), mode="w", format=fmt, container_options=options)
        for kind, stream in inputs.items():
            self.streams[kind] = self.container.add_stream_from_template(stream)
            self.templates[kind] = _signature(stream)

    def _copy(self, kind: str, packet: Packet[Stream], shift: Fraction) -> bool:
        """Muxes `packet` moved by `shift` seconds; False (dropped) if it would not follow the one before."""
        assert self.container is not None and packet.time_base is not None and packet.dts is not None
        ticks = math.ceil(shift / packet.time_base)
        dts = (packet.dts + ticks) * packet.time_base
        if kind in self.last_dts and dts <= self.last_dts[kind]:
            return False
        self.last_dts[kind] = dts
        packet.dts += ticks
        packet.pts = (packet.pts or 0) + ticks
        packet.stream = self.streams[kind]
        self.container.mux(packet)
        return True

    def close(self) -> None:
        if self.container is not None:
            self.container.close()

    def abort(self) -> None:
        if self.container is not None:
            with contextlib.suppress(Exception):
                self.container.close()
            self.out.unlink(missing_ok=True)


def trim_to_fragments(path: Path) -> bool:
    """Cuts a fragmented MP4 that a crash cut short after its last complete fragment (`mdat` box), in place; False
    when there was nothing to cut. The demuxer refuses to open some cuts (one inside a `moof` header) that hold
    complete fragments before it."""
    size = path.stat().st_size
    end, keep = 0, 0
    with path.open("rb") as f:
        while end + 8 <= size:
            f.seek(end)
            header = f.read(16)
            length, kind = int.from_bytes(header[:4], "big"), header[4:8]
            if length == 1 and len(header) == 16:
                length = int.from_bytes(header[8:16], "big")
            elif length == 0:
                length = size - end
            if length < 8 or end + length > size:
                break
            end += length
            if kind in (b"mdat", b"moov", b"mfra"):
                keep = end
    if not 0 < keep < size:
        return False
    with path.open("r+b") as f:
        f.truncate(keep)
    return True


def _packets(source: InputContainer, streams: list[Stream], path: Path) -> Iterator[Packet[Stream]]:
    """The part's complete packets: up to the first one the file ends inside of, or damaged data."""
    try:
        for packet in source.demux(streams):
            if packet.is_corrupt:  # cut short: the file ends inside this packet
                return
            if packet.pts is not None and packet.dts is not None and packet.time_base is not None:
                yield packet  # (not the demuxer's empty flush packets)
    except av.FFmpegError as exc:
        log.info("part %s ends in damaged data, keeping what came before: %s", path, exc)


def _until_each_stream(packets: Iterator[Packet[Stream]], streams: int) -> Iterator[Packet[Stream]]:
    """The first packets, up to the first one of the last stream to show up."""
    seen: set[int] = set()
    for packet in packets:
        yield packet
        seen.add(packet.stream.index)
        if len(seen) == streams:
            return


def _seconds(ticks: int | None, packet: Packet[Stream]) -> Fraction:
    assert ticks is not None and packet.time_base is not None
    return ticks * packet.time_base


def _first(container: InputContainer, kind: str) -> Stream | None:
    streams = container.streams.video if kind == "video" else container.streams.audio
    return streams[0] if streams else None


def _signature(stream: Stream) -> tuple[object, ...]:
    """What must be the same for packets of two parts to play as one stream."""
    if isinstance(stream, VideoStream):
        ctx = stream.codec_context
        return (ctx.name, ctx.width, ctx.height, bytes(ctx.extradata or b""))
    if isinstance(stream, AudioStream):
        return (stream.codec_context.name, stream.codec_context.sample_rate, stream.codec_context.layout.name)
    return (stream.type,)
