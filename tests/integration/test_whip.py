"""WHIP into the built-in recorder over real WebRTC (aiortc publishers, ICE host candidates, DTLS-SRTP) and HTTP."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from aiortc import RTCPeerConnection

from bench.common import free_port
from callrec.domain.publish import Publisher, mint
from callrec.domain.settings import Settings
from callrec.media.stage import Feed
from callrec.media.testsignals import publisher_tracks
from callrec.media.whip_client import WhipError, WhipSession, whip_publish
from callrec.recorder.service import Recorder, create_recorder_app
from callrec.recorder.whip import Whip, WhipConfig
from callrec.servers import build_recorder, serve_app
from tests.conftest import PUBLISH_SECRET, SECRET, wait_until_up
from tests.integration.test_recorder import Backend, until

ROOM = "room-1"


@dataclass
class Running:
    recorder: Recorder
    whip: Whip
    backend: Backend
    url: str
    stop: asyncio.Event

    def endpoint(self, room: str = ROOM) -> str:
        return f"{self.url}/whip/{room}"

    def presence(self) -> list[tuple[str, str]]:
        """Joins and leaves as the backend saw them, each participant's renewals of `joined` left out."""
        seen: list[tuple[str, str]] = []
        last: dict[str, str] = {}
        for m in self.backend.callbacks:
            if m["type"] == "publisher" and isinstance(p := m["publisher"], dict):
                who, state = str(p["participant"]["id"]), str(p["state"])
                if last.get(who) != state:
                    seen.append((who, state))
                last[who] = state
        return seen

    def feeds(self, room: str = ROOM) -> list[Feed]:
        return self.recorder.stages.get(room).feeds()


@asynccontextmanager
async def running_recorder(tmp_path: Path, **config: Any) -> AsyncIterator[Running]:
    """The recorder app with WHIP on loopback, and a backend that keeps its signed callbacks (it outlives it)."""
    backend = Backend()
    backend_stop, stop = asyncio.Event(), asyncio.Event()
    port = free_port()

    async def until_set(event: asyncio.Event) -> None:
        await event.wait()

    async with httpx.AsyncClient(timeout=30) as http:
        recorder = Recorder(SECRET, [backend.url], tmp_path / "work", http)
        whip = Whip(recorder, WhipConfig(PUBLISH_SECRET, **config))
        backend_task = asyncio.create_task(
            serve_app(backend.app(), "127.0.0.1", backend.port, lambda: until_set(backend_stop))
        )
        task = asyncio.create_task(
            serve_app(create_recorder_app(recorder, whip), "127.0.0.1", port, lambda: until_set(stop))
        )
        await wait_until_up(f"{backend.url}/health")
        await wait_until_up(f"http://127.0.0.1:{port}/health")
        try:
            yield Running(recorder, whip, backend, f"http://127.0.0.1:{port}", stop)
        finally:
            stop.set()
            await task
            backend_stop.set()
            await backend_task


def token(participant: str = "alice", room: str = ROOM, name: str = "Alice") -> str:
    return mint(PUBLISH_SECRET, Publisher(room, participant, name, "speaker", int(time.time()) + 600))


async def publish(running: Running, participant: str = "alice", **options: Any) -> WhipSession:
    width, height = options.pop("size", (320, 180))
    video, audio = publisher_tracks(
        options.pop("color", "blue"), options.pop("tone", 440.0), width=width, height=height,
        fps=options.pop("fps", 15), tone_start_s=0.0, flash_every_s=options.pop("flash_every_s", None),
    )  # fmt: skip
    return await whip_publish(
        running.endpoint(options.pop("room", ROOM)), token(participant), [video, audio], **options
    )


async def an_offer(video: bool = True, audio: bool = True) -> str:
    pc = RTCPeerConnection()
    for kind, wanted in (("audio", audio), ("video", video)):
        if wanted:
            pc.addTransceiver(kind, direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


async def post(running: Running, body: str | bytes, *, room: str = ROOM, **headers: str) -> httpx.Response:
    sent = {"Content-Type": "application/sdp", "Authorization": f"Bearer {token(room=room)}"} | headers
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.post(running.endpoint(room), content=body, headers=sent)


def flashes(feed: Feed, seen: dict[int, float]) -> None:
    """Notes the capture time of each white frame (the first of each flash) the feed holds."""
    for picture in list(feed._video):  # noqa: SLF001 - the test reads what recordings read, all of it
        if picture.seq not in seen and picture.frame.to_ndarray()[: picture.frame.height].mean() > 200:
            seen[picture.seq] = picture.capture_s


async def test_a_publisher_is_answered_and_its_media_reaches_the_room_in_sync(tmp_path: Path) -> None:
    async with running_recorder(tmp_path) as running:
        session = await publish(running, tone=None, flash_every_s=1.0)
        assert session.location.endswith(f"/whip/{ROOM}/{next(iter(running.whip.sessions))}")
        assert "a=candidate:" in session.answer and "a=fingerprint:" in session.answer
        await until(lambda: running.presence() == [("alice", "joined")])
        [feed] = running.feeds()
        assert (feed.participant_id, feed.name, feed.role) == ("alice", "Alice", "speaker")
        white: dict[int, float] = {}
        started = time.monotonic()
        while time.monotonic() - started < 3.6:  # flashes and beeps at 1, 2 and 3 s of the publisher's clock
            flashes(feed, white)
            await asyncio.sleep(0.05)
        now = time.monotonic()
        picture = feed.picture_at(now)
        assert picture is not None and now - 1.0 < picture.capture_s <= now  # captured a moment ago
        assert picture.frame.width == 320 and picture.frame.height == 180
        # The beeps, found in the feed's audio by their capture times, start where the white frames were captured.
        start = now - 3.5
        samples = feed.audio(start, int(3.5 * 48000))
        loud = np.flatnonzero(np.abs(samples) > 0.05)
        onsets = [start + i / 48000 for j, i in enumerate(loud) if j == 0 or i - loud[j - 1] > 4800]
        flash_times = sorted(white.values())
        assert len(flash_times) >= 2 and len(onsets) >= 2, (flash_times, onsets)
        for flash in flash_times[1:]:  # from the second on: the Sender Reports tie both tracks to one clock
            assert abs(flash - min(onsets, key=lambda t: abs(t - flash))) < 0.045, (flash_times, onsets)
        assert await session.close() == 200
        await until(lambda: running.presence() == [("alice", "joined"), ("alice", "left")])
        assert running.feeds() == [] and running.whip.sessions == {}


async def test_the_same_participant_again_replaces_its_session_and_the_cap_counts_participants(tmp_path: Path) -> None:
    async with running_recorder(tmp_path, max_publishers=2) as running:
        first = await publish(running, "alice")
        await until(lambda: running.presence() == [("alice", "joined")])
        second = await publish(running, "alice", color="red", video_codec="H264")
        await until(lambda: running.presence() == [("alice", "joined"), ("alice", "left"), ("alice", "joined")])
        assert len(running.whip.sessions) == 1 and len(running.feeds()) == 1
        assert "H264/90000" in second.answer
        await until(lambda: running.feeds()[0].picture_at(time.monotonic()) is not None)  # H.264 decodes too
        bob = await publish(running, "bob")
        with pytest.raises(WhipError) as refused:
            await publish(running, "carol")
        assert refused.value.status == 409 and '"publishers"' in refused.value.body
        assert "CALLREC_MAX_PUBLISHERS_PER_ROOM" in refused.value.body
        assert await first.close() == 404  # replaced: its session is gone
        # A DELETE with a valid token of another room, for a session of this one, finds nothing.
        async with httpx.AsyncClient() as http:
            other = await http.delete(
                second.location.replace(f"/whip/{ROOM}/", "/whip/room-2/"),
                headers={"Authorization": f"Bearer {token(room='room-2')}"},
            )
        assert (other.status_code, other.json()["error"]) == (404, "session")
        assert len(running.whip.sessions) == 2
        assert await second.close() == 200 and await bob.close() == 200
        await until(lambda: running.presence().count(("bob", "left")) == 1 and not running.whip.sessions)


async def test_a_full_hd_camera_is_kept_scaled_down_to_720p(tmp_path: Path) -> None:
    async with running_recorder(tmp_path) as running:
        session = await publish(running, "alice", size=(1920, 1080), fps=5)
        await until(lambda: running.feeds() != [] and running.feeds()[0].picture_at(time.monotonic()) is not None)
        picture = running.feeds()[0].picture_at(time.monotonic())
        assert picture is not None and (picture.frame.width, picture.frame.height) == (1280, 720)
        await session.close()


async def test_ice_that_never_connects_is_dropped_and_media_that_stops_leaves(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="callrec.recorder.whip")
    async with running_recorder(tmp_path, connect_timeout_s=1.0, media_timeout_s=1.0) as running:
        offer = await an_offer()  # its peer connection is closed: nobody will answer connectivity checks
        response = await post(running, offer)
        assert response.status_code == 201
        assert len(running.whip.sessions) == 1
        await until(lambda: not running.whip.sessions, timeout=10)
        assert "ICE/DTLS did not connect within 1 s" in caplog.text
        assert running.presence() == []  # it never joined

        session = await publish(running, "alice")
        await until(lambda: running.presence() == [("alice", "joined")])
        for sender in session.pc.getSenders():
            assert sender.track is not None
            sender.track.stop()  # the connection stays up, the media stops
        await until(lambda: running.presence() == [("alice", "joined"), ("alice", "left")], timeout=10)
        assert running.feeds() == [] and not running.whip.sessions
        assert "no media for 1 s" in caplog.text
        assert await session.close() == 404

        # A publisher that vanishes (its peer connection closed, no DELETE) leaves too.
        vanishing = await publish(running, "bob")
        await until(lambda: ("bob", "joined") in running.presence())
        await vanishing.pc.close()
        await until(lambda: ("bob", "left") in running.presence() and not running.whip.sessions, timeout=10)


async def test_shutdown_ends_every_session_and_each_publisher_leaves(tmp_path: Path) -> None:
    async with running_recorder(tmp_path) as running:
        sessions = [await publish(running, name) for name in ("alice", "bob")]
        await until(lambda: sorted(running.presence()) == [("alice", "joined"), ("bob", "joined")])
        running.stop.set()
        await until(lambda: not running.whip.sessions and len(running.presence()) == 4)
        assert sorted(running.presence()) == [
            ("alice", "joined"),
            ("alice", "left"),
            ("bob", "joined"),
            ("bob", "left"),
        ]
        for session in sessions:
            await session.close()


async def test_bad_offers_and_requests_get_a_clear_answer(tmp_path: Path) -> None:
    async with running_recorder(tmp_path, ice_servers=("stun:stun.example.org:3478",)) as running:
        offer = await an_offer()

        async def refused(response: httpx.Response) -> tuple[int, str]:
            body = response.json()
            assert body["message"]
            return response.status_code, body["error"]

        assert await refused(await post(running, offer, **{"Content-Type": "text/plain"})) == (415, "content-type")
        assert await refused(await post(running, "v=0\r\n" + "a=x\r\n" * 20000)) == (413, "size")

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(20):
                yield b"a=x\r\n" * 1000

        async with httpx.AsyncClient() as http:  # no Content-Length: the body is counted as it comes
            chunked = await http.post(running.endpoint(), content=chunks(), headers={
                "Content-Type": "application/sdp", "Authorization": f"Bearer {token()}"})  # fmt: skip
        assert await refused(chunked) == (413, "size")
        assert await refused(await post(running, offer, Authorization="")) == (401, "token")
        assert await refused(await post(running, offer, Authorization="Bearer nope")) == (401, "token")
        wrong_room = {"Authorization": f"Bearer {token(room='room-2')}"}
        assert await refused(await post(running, offer, **wrong_room)) == (403, "token")
        assert await refused(await post(running, offer, room="bad.room")) == (404, "room")
        assert await refused(await post(running, "hello")) == (400, "sdp")
        assert await refused(await post(running, b"\xff\xfe garbage")) == (400, "sdp")
        assert await refused(await post(running, offer.replace("a=ice-ufrag", "a=x-ufrag"))) == (400, "sdp")
        no_media = offer.split("m=")[0]
        assert await refused(await post(running, no_media)) == (400, "sdp")
        vp9 = re.sub(r"(a=rtpmap:\d+) (VP8|H264|rtx)/90000", r"\1 VP9/90000", await an_offer(audio=False))
        assert await refused(await post(running, vp9)) == (406, "codec")
        g722 = re.sub(r"(a=rtpmap:\d+) (opus/48000/2|PCMU/8000|PCMA/8000|G722/8000)", r"\1 iLBC/8000", offer)
        response = await post(running, g722)
        assert await refused(response) == (406, "codec") and "Opus" in response.json()["message"]
        assert running.whip.sessions == {}

        answered = await post(running, offer)
        assert answered.status_code == 201 and answered.headers["content-type"] == "application/sdp"
        assert answered.headers.get_list("link") == ['<stun:stun.example.org:3478>; rel="ice-server"']
        location = answered.headers["location"]
        assert re.fullmatch(rf"/whip/{ROOM}/[A-Za-z0-9_-]+", location)
        async with httpx.AsyncClient(base_url=running.url) as http:
            for path in (f"/whip/{ROOM}", location):
                patched = await http.patch(
                    path, content="a=end-of-candidates", headers={"Content-Type": "application/trickle-ice-sdpfrag"}
                )  # noqa: E501
                assert (patched.status_code, patched.headers["allow"]) == (405, "POST, DELETE, OPTIONS")
                options = await http.options(path)
                assert (options.status_code, options.headers["accept-post"]) == (204, "application/sdp")
            no_token = await http.delete(location)
            assert no_token.status_code == 401
            someone_else = await http.delete(location, headers={"Authorization": f"Bearer {token('mallory')}"})
            assert someone_else.status_code == 403 and "another participant" in someone_else.json()["message"]
            moderator = mint(PUBLISH_SECRET, Publisher(ROOM, "mod", "Mod", "moderator", int(time.time()) + 600))
            assert (await http.delete(location, headers={"Authorization": f"Bearer {moderator}"})).status_code == 200
            assert (await http.delete(location, headers={"Authorization": f"Bearer {token()}"})).status_code == 404
        assert running.whip.sessions == {}


async def test_the_recorder_does_not_start_without_a_publish_secret(tmp_path: Path) -> None:
    base = {"data_dir": tmp_path, "recording_secret": SECRET, "api_url": "http://127.0.0.1:9"}
    async with httpx.AsyncClient() as http:
        with pytest.raises(SystemExit, match="CALLREC_PUBLISH_SECRET is not set"):
            await build_recorder(Settings(**base), http)  # type: ignore[arg-type]
        with pytest.raises(SystemExit, match="CALLREC_PUBLISH_SECRET is too short"):
            await build_recorder(Settings(**base, publish_secret="short"), http)  # type: ignore[arg-type]
        app, _ = await build_recorder(Settings(**base, publish_secret=PUBLISH_SECRET), http)  # type: ignore[arg-type]
    assert {"/whip/<room_id>", "/whip/<room_id>/<session_id>"} <= {rule.rule for rule in app.url_map.iter_rules()}
