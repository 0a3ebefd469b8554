"""The explicit test source: generated frames, tones and beeps, and the WHIP client over real loopback WebRTC."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from fractions import Fraction

import av
import numpy as np
import numpy.typing as npt
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from quart import Quart, Response, request

from bench.common import free_port
from callrec.media.testsignals import (
    AUDIO_SAMPLE_RATE,
    COLORS,
    PatternVideoTrack,
    ToneAudioTrack,
    main,
    parse_color,
    publisher_tracks,
)
from callrec.media.whip_client import WhipError, whip_publish
from callrec.servers import serve_app
from tests.conftest import wait_until_up


def centre(frame: av.VideoFrame) -> npt.NDArray[np.int64]:
    rgb = frame.to_ndarray(format="rgb24")
    h, w = rgb.shape[:2]
    return rgb[h // 2 - 4 : h // 2 + 4, w // 2 - 4 : w // 2 + 4].reshape(-1, 3).mean(axis=0).astype(np.int64)


def close_to(actual: npt.NDArray[np.int64], expected: tuple[int, int, int], tolerance: int = 8) -> bool:
    return bool(np.all(np.abs(actual - np.array(expected)) <= tolerance))


def dominant_hz(samples: npt.NDArray[np.float64]) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / AUDIO_SAMPLE_RATE)[int(np.argmax(spectrum))])


def test_video_frames_have_the_colour_and_change_every_frame() -> None:
    track = PatternVideoTrack("blue", width=320, height=180, fps=15)
    frames = [track.frame_at(i) for i in range(40)]
    for frame in frames:
        assert (frame.width, frame.height) == (320, 180)
        assert close_to(centre(frame), COLORS["blue"])
    pictures = [f.to_ndarray(format="rgb24") for f in frames]
    assert all(not np.array_equal(a, b) for a, b in zip(pictures, pictures[1:], strict=False))
    assert [f.pts for f in frames[:3]] == [0, 6000, 12000] and frames[0].time_base == Fraction(1, 90_000)


def test_the_white_flash_frame_is_at_the_flash_instant() -> None:
    track = PatternVideoTrack((10, 200, 30), fps=15, flash_every_s=2.0)
    white = [i for i in range(130) if close_to(centre(track.frame_at(i)), (255, 255, 255))]
    assert white == [30, 60, 90, 120]
    assert [track.frame_at(i).pts / 90_000 for i in white] == [2.0, 4.0, 6.0, 8.0]
    whole = track.frame_at(60).to_ndarray(format="rgb24")
    assert whole.min() >= 250  # the whole frame, bar included


def test_tone_frequency_and_start_delay() -> None:
    track = ToneAudioTrack(440.0, start_s=1.0)
    before = np.concatenate([track.frame_at(i).to_ndarray()[0] for i in range(50)])  # 0 .. 1 s
    after = np.concatenate([track.frame_at(i).to_ndarray()[0] for i in range(50, 100)]).astype(np.float64)
    assert not before.any()
    assert abs(dominant_hz(after) - 440.0) <= 2.0
    assert 0.25 < np.abs(after).max() / 32767 <= 0.31
    frame = track.frame_at(3)
    assert (frame.samples, frame.sample_rate, frame.layout.name, frame.format.name) == (960, 48_000, "mono", "s16")
    assert frame.pts == 3 * 960


def test_beeps_start_with_the_flashes() -> None:
    video, audio = publisher_tracks("red", 300.0, fps=30, flash_every_s=2.0)
    assert video.clock is audio.clock
    samples = audio.samples_at(0, 7 * AUDIO_SAMPLE_RATE)
    beep = samples - 0.3 * np.sin(2 * np.pi * 300.0 * np.arange(len(samples)) / AUDIO_SAMPLE_RATE)
    on = np.abs(beep) > 1e-6
    onsets = [i for i in range(1, len(on)) if on[i] and not on[i - 1 : i].any() and not on[max(0, i - 480) : i].any()]
    flashes = [i for i in range(7 * 30) if close_to(centre(video.frame_at(i)), (255, 255, 255))]
    assert [video.frame_at(i).pts / 90_000 for i in flashes] == [2.0, 4.0, 6.0]
    assert [round(i / AUDIO_SAMPLE_RATE, 3) for i in onsets] == [2.0, 4.0, 6.0]
    burst = beep[2 * AUDIO_SAMPLE_RATE : 2 * AUDIO_SAMPLE_RATE + 4800]
    assert abs(dominant_hz(burst) - 1000.0) <= 10.0
    assert not on[2 * AUDIO_SAMPLE_RATE + 4800 : 4 * AUDIO_SAMPLE_RATE].any()  # 100 ms long


async def test_tracks_are_paced_by_pts_and_stop() -> None:
    video, audio = publisher_tracks("green", 440.0)
    frames = [await video.recv() for _ in range(3)]
    chunks = [await audio.recv() for _ in range(3)]
    assert [f.pts for f in frames] == [0, 6000, 12000]
    assert [c.pts for c in chunks] == [0, 960, 1920]
    video.stop()
    with pytest.raises(MediaStreamError):
        await video.recv()


def test_colours_parse_or_are_refused_clearly() -> None:
    assert parse_color("Red") == COLORS["red"]
    assert parse_color("#102030") == (16, 32, 48)
    with pytest.raises(ValueError, match="unknown colour"):
        parse_color("chartreuse-ish")
    with pytest.raises(ValueError, match="even"):
        PatternVideoTrack("red", width=321, height=180)
    with pytest.raises(ValueError, match="frequency"):
        ToneAudioTrack(30_000.0)


def test_cli_refuses_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--whip-url", "http://127.0.0.1:1/whip", "--token", "t", "--color", "nope"])
    assert exited.value.code == 2
    assert "unknown colour" in capsys.readouterr().err


@dataclass
class WhipServer:
    """A minimal WHIP endpoint with aiortc on the other side: keeps what it receives."""

    url: str
    video: list[av.VideoFrame] = field(default_factory=list)
    audio: list[av.AudioFrame] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    offers: list[str] = field(default_factory=list)


@pytest.fixture
async def whip_server() -> AsyncIterator[WhipServer]:
    app = Quart(__name__)
    port = free_port()
    server = WhipServer(url=f"http://127.0.0.1:{port}/whip")
    pcs: dict[str, RTCPeerConnection] = {}
    readers: list[asyncio.Task[None]] = []

    async def read(track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                (server.video if track.kind == "video" else server.audio).append(frame)  # type: ignore[arg-type]

    @app.post("/whip")
    async def post() -> Response:
        if request.headers.get("Authorization") != "Bearer good":
            return Response('{"error": "unauthorized"}', status=401, content_type="application/json")
        offer = (await request.get_data()).decode()
        server.offers.append(offer)
        pc = RTCPeerConnection()
        pc.on("track", lambda track: readers.append(asyncio.ensure_future(read(track))))
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        session = uuid.uuid4().hex
        pcs[session] = pc
        headers = {"Location": f"/whip/{session}", "Content-Type": "application/sdp"}
        return Response(pc.localDescription.sdp, status=201, headers=headers)

    @app.delete("/whip/<session>")
    async def delete(session: str) -> Response:
        pc = pcs.pop(session, None)
        if pc is None:
            return Response("", status=404)
        server.deleted.append(session)
        await pc.close()
        return Response("", status=200)

    stop = asyncio.Event()
    task = asyncio.create_task(serve_app(app, "127.0.0.1", port, stop.wait))
    await wait_until_up(f"http://127.0.0.1:{port}/")
    yield server
    for pc in pcs.values():
        await pc.close()
    for reader in readers:
        reader.cancel()
    stop.set()
    await task


async def test_whip_publish_sends_colour_and_tone_and_delete_ends_it(whip_server: WhipServer) -> None:
    tracks = publisher_tracks("magenta", 660.0, width=160, height=96, fps=15)
    session = await whip_publish(whip_server.url, "good", tracks, video_codec="VP8")
    assert session.connection_state == "connected"
    assert session.location.startswith(whip_server.url + "/")
    assert "a=candidate" in whip_server.offers[0]  # non-trickle: the offer carries its candidates
    assert "VP8" in whip_server.offers[0] and "H264" not in whip_server.offers[0]
    for _ in range(100):
        if len(whip_server.video) >= 10 and len(whip_server.audio) >= 50:
            break
        await asyncio.sleep(0.05)
    assert close_to(centre(whip_server.video[-1]), COLORS["magenta"], tolerance=20)
    pcm = np.concatenate([f.to_ndarray().reshape(-1, 2)[:, 0] for f in whip_server.audio[-50:]]).astype(np.float64)
    assert abs(dominant_hz(pcm) - 660.0) <= 4.0
    assert await session.close() == 200
    assert whip_server.deleted == [session.location.rsplit("/", 1)[1]]
    assert await session.close() == 200  # idempotent: no second DELETE
    assert len(whip_server.deleted) == 1


async def test_whip_publish_reports_a_refusal_with_status_and_body(whip_server: WhipServer) -> None:
    with pytest.raises(WhipError, match="401") as refused:
        await whip_publish(whip_server.url, "bad", publisher_tracks("red", 440.0), timeout=5)
    assert refused.value.status == 401 and "unauthorized" in refused.value.body
