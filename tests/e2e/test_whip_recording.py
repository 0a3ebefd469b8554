"""Real people, as far as a test can fake them: aiortc publishers send colours and tones by WHIP over loopback
WebRTC (ICE host candidates, DTLS-SRTP) through the API into the built-in recorder; the recordings are decoded
frame by frame and their sound by spectrum."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from callrec.domain.layout import Layout
from callrec.media.testsignals import COLORS, ToneAudioTrack, publisher_tracks
from callrec.media.whip_client import WhipSession, whip_publish
from tests.conftest import StackFactory
from tests.helpers import create_room, wait_for_status
from tests.media_checks import (
    band_level,
    decode_audio,
    nearest,
    onset,
    repeated_frames,
    sample_video,
    strongest_tones,
    tile_centres,
    video_size,
)

WIDTH, HEIGHT = 640, 360
ENCODING = {"video": {"width": WIDTH, "height": HEIGHT, "framerate": 15, "keyFrameInterval": 1, "bitrate": 800}}


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    color: str
    tone_hz: float


ALICE = Person("alice", "Alice", "red", 440.0)
BOB = Person("bob", "Bob", "green", 620.0)
CAROL = Person("carol", "Carol", "blue", 830.0)
PALETTE = {p.id: COLORS[p.color] for p in (ALICE, BOB, CAROL)}


@dataclass
class Publishing:
    person: Person
    session: WhipSession
    audio: ToneAudioTrack


async def publish(api: httpx.AsyncClient, room_id: str, person: Person, *, silent: bool = False) -> Publishing:
    minted = await api.post(
        f"/api/v1/rooms/{room_id}/publish-token", json={"participantId": person.id, "participantName": person.name}
    )
    assert minted.status_code == 201, minted.text
    grant = minted.json()
    # Bob talks louder than the others once he starts, so the active speaker is his to take.
    video, audio = publisher_tracks(
        person.color,
        person.tone_hz,
        width=320,
        height=180,
        fps=15,
        amplitude=0.3 if person is BOB else 0.1,
        tone_start_s=1e9 if silent else 0.0,
    )
    session = await whip_publish(grant["whipUrl"], grant["token"], [video, audio], timeout=20)
    return Publishing(person, session, audio)


async def call_ids(api: httpx.AsyncClient, room_id: str) -> set[str]:
    response = await api.get(f"/api/v1/rooms/{room_id}/call")
    if response.status_code == 404:
        return set()
    assert response.status_code == 200, response.text
    return {p["id"] for p in response.json()["participants"]}


async def wait_for_call(api: httpx.AsyncClient, room_id: str, expected: set[str], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while (ids := await call_ids(api, room_id)) != expected:
        assert time.monotonic() < deadline, f"call presence is {ids}, expected {expected}"
        await asyncio.sleep(0.1)


async def start_recording(api: httpx.AsyncClient, room_id: str, **config: Any) -> str:
    body: dict[str, Any] = {"roomId": room_id} | ({"config": config} if config else {})
    started = await api.post("/api/v1/recordings", json=body)
    assert started.status_code == 201, started.text
    recording_id: str = started.json()["recordingId"]
    return recording_id


async def stop_and_download(api: httpx.AsyncClient, recording_id: str, path: Path) -> dict[str, Any]:
    stopped = await api.post(f"/api/v1/recordings/{recording_id}/stop")
    assert stopped.status_code == 202, stopped.text
    rec = await wait_for_status(api, recording_id, {"complete", "failed"})
    assert rec["status"] == "complete", rec
    media = await api.get(f"/api/v1/recordings/{recording_id}/media")
    assert media.status_code == 200
    path.write_bytes(media.content)
    assert video_size(path) == (WIDTH, HEIGHT)
    return rec


def who(colours: list[tuple[int, int, int]]) -> list[str | None]:
    return [nearest(c, PALETTE) for c in colours]


def shows(colours: list[tuple[int, int, int]], people: set[str]) -> bool:
    """The tiles show exactly these people, each once."""
    names = who(colours)
    return None not in names and len(set(names)) == len(names) and set(names) == people


@pytest.fixture
async def publishers() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as sessions:
        yield sessions


async def test_three_publishers_recorded_in_grid_then_speaker(
    stacks: StackFactory, tmp_path: Path, publishers: AsyncExitStack
) -> None:
    stack = await stacks.start()
    api = stack.api
    room_id = await create_room(api, "WHIP call", encoding=ENCODING, layout="grid")

    people = await asyncio.gather(
        publish(api, room_id, ALICE), publish(api, room_id, BOB, silent=True), publish(api, room_id, CAROL)
    )
    for p in people:
        publishers.push_async_callback(p.session.close)
    alice, bob, carol = people
    await wait_for_call(api, room_id, {"alice", "bob", "carol"})

    # grid: three equal tiles, each showing one publisher; the sound holds the two who talk, not Bob's silence
    grid_id = await start_recording(api, room_id)
    await asyncio.sleep(3)
    await stop_and_download(api, grid_id, tmp_path / "grid.mp4")
    frames = sample_video(tmp_path / "grid.mp4", {"tiles": tile_centres(Layout.GRID, 3, WIDTH, HEIGHT)})
    assert len(frames) >= 30
    assert all(shows(f["tiles"], {"alice", "bob", "carol"}) for t, f in frames if t >= 0.5), [
        (t, who(f["tiles"])) for t, f in frames
    ]
    count, repeated = repeated_frames(tmp_path / "grid.mp4")
    assert repeated <= 0.1 * count, f"{repeated} of {count} frames repeat the one before: the picture is not live"
    rate, sound, _ = decode_audio(tmp_path / "grid.mp4")
    steady = sound[rate // 2 :]
    assert sorted(round(f, -1) for f in strongest_tones(steady, rate, 2)) == [440, 830]
    assert band_level(steady, rate, BOB.tone_hz) < 0.1 * band_level(steady, rate, ALICE.tone_hz)

    # speaker: Bob starts talking 1.5 s in and takes the large tile within 1.5 s of his voice in the recording
    speaker_id = await start_recording(api, room_id, layout="speaker")
    await asyncio.sleep(1.5)
    bob.audio.start_s = bob.audio.clock.elapsed()
    await asyncio.sleep(3.5)
    rec = await stop_and_download(api, speaker_id, tmp_path / "speaker.mp4")
    assert rec["layout"] == "speaker"

    rate, sound, audio_start = decode_audio(tmp_path / "speaker.mp4")
    bob_on = onset(sound, rate, BOB.tone_hz)
    assert bob_on is not None and bob_on > 0.5, "Bob's tone is not in the speaker recording"
    bob_on += audio_start
    tiles = tile_centres(Layout.SPEAKER, 3, WIDTH, HEIGHT)
    frames = sample_video(tmp_path / "speaker.mp4", {"large": tiles[:1], "strip": tiles[1:]})
    large = [(t, nearest(f["large"][0], PALETTE)) for t, f in frames]
    before = [name for t, name in large if 0.5 <= t < bob_on - 0.1]
    assert before and set(before) <= {"alice", "carol"}, large
    switched = next((t for t, name in large if t >= bob_on - 0.1 and name == "bob"), None)
    assert switched is not None and switched - bob_on <= 1.5, (bob_on, large)
    after = [f for t, f in frames if t >= switched]
    assert all(shows(f["large"] + f["strip"], {"alice", "bob", "carol"}) for f in after)
    assert all(who(f["large"]) == ["bob"] for f in after), large

    # the mix holds every voice, and nothing else stronger (no synthetic tones)
    talking = sound[int((bob_on - audio_start + 0.3) * rate) :]
    assert len(talking) > rate
    assert sorted(round(f, -1) for f in strongest_tones(talking, rate, 3)) == [440, 620, 830]
    for person in (ALICE, BOB, CAROL):
        assert band_level(talking, rate, person.tone_hz) > 0.03, person

    # presence follows the sessions: each DELETE takes its publisher out of the call
    assert await carol.session.close() == 200
    await wait_for_call(api, room_id, {"alice", "bob"})
    assert await alice.session.close() == 200 and await bob.session.close() == 200
    await wait_for_call(api, room_id, set())


async def test_a_publisher_joining_and_leaving_reflows_the_grid(
    stacks: StackFactory, tmp_path: Path, publishers: AsyncExitStack
) -> None:
    stack = await stacks.start()
    api = stack.api
    room_id = await create_room(api, "Reflow", encoding=ENCODING, layout="grid")
    for p in await asyncio.gather(publish(api, room_id, ALICE), publish(api, room_id, BOB)):
        publishers.push_async_callback(p.session.close)
    await wait_for_call(api, room_id, {"alice", "bob"})

    recording_id = await start_recording(api, room_id)
    await asyncio.sleep(2)
    carol = await publish(api, room_id, CAROL)
    publishers.push_async_callback(carol.session.close)
    await wait_for_call(api, room_id, {"alice", "bob", "carol"})
    await asyncio.sleep(2.5)
    assert await carol.session.close() == 200
    await wait_for_call(api, room_id, {"alice", "bob"})
    await asyncio.sleep(2)
    await stop_and_download(api, recording_id, tmp_path / "reflow.mp4")

    two, three = tile_centres(Layout.GRID, 2, WIDTH, HEIGHT), tile_centres(Layout.GRID, 3, WIDTH, HEIGHT)
    frames = sample_video(tmp_path / "reflow.mp4", {"two": two, "three": three})
    states = [arrangement(f["two"], f["three"]) for _, f in frames]
    placed = [s for s in states if s is not None]
    sequence = [s for i, s in enumerate(placed) if i == 0 or placed[i - 1] != s]
    assert sequence == ["two", "three", "two"], [(t, who(f["two"]), who(f["three"])) for t, f in frames]
    assert states.count("two") >= 30, states  # seconds of each arrangement, at 15 fps
    # Alice and Bob keep their places (in the order they joined the call: they published at once), Carol third
    assert sum(shows(f["three"][:2], {"alice", "bob"}) and who(f["three"])[2] == "carol" for _, f in frames) >= 15, (
        states
    )
    assert states.count(None) <= 0.1 * len(states), states


def arrangement(two: list[tuple[int, int, int]], three: list[tuple[int, int, int]]) -> str | None:
    """Which grid the frame shows: Alice and Bob side by side, or with a third tile (Carol, or her name tile
    while her first picture is on its way); None for a frame between arrangements."""
    first, second, third = who(three)
    if {first, second} == {"alice", "bob"} and third not in ("alice", "bob") and max(three[2]) > 60:
        return "three"
    if set(who(two)) == {"alice", "bob"}:
        return "two"
    return None


async def test_the_command_line_publisher_joins_the_call_and_leaves_on_ctrl_c(stacks: StackFactory) -> None:
    stack = await stacks.start()
    api = stack.api
    room_id = await create_room(api, "CLI")
    minted = await api.post(
        f"/api/v1/rooms/{room_id}/publish-token", json={"participantId": "cli", "participantName": "CLI"}
    )
    assert minted.status_code == 201, minted.text
    grant = minted.json()
    command = [sys.executable, "-m", "callrec.media.testsignals", "--whip-url", grant["whipUrl"], "--token"]
    process = await asyncio.create_subprocess_exec(
        *command, grant["token"], "--color", "yellow", "--seconds", "60", "--width", "160", "--height", "90",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        await wait_for_call(api, room_id, {"cli"}, timeout=30)
        process.send_signal(signal.SIGINT)
        output, _ = await asyncio.wait_for(process.communicate(), 20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, output.decode()
    assert "done: connected 1 time(s)" in output.decode()  # and it left the call at once (below)
    await wait_for_call(api, room_id, set())
