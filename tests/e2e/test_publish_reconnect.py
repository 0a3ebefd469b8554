"""Publishers that reconnect by themselves: when the recorder ends their session (it was restarted, as another one
takes over after a crash), the publish page in a real Chromium and the Python test publisher (`publish_until`)
publish again into the same room, with the same token, without anyone pressing anything; a revoked token ends the
retrying with the reason shown.

The recorder is restarted for real: the stack's recorder app stops (its WHIP sessions end, each publisher leaves
the call) and a fresh one, knowing nothing of the old one's sessions, serves on the same port.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from callrec.media.testsignals import publisher_tracks
from callrec.media.whip_client import WhipError, publish_until
from tests.conftest import StackFactory
from tests.e2e.test_publish_page import CHROMIUM, CHROMIUM_ARGS, NO_CHROMIUM, fake_camera_share, video_frames
from tests.helpers import create_room, wait_for_status

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

# Every state the page shows, in order, recorded by the browser itself (an init script runs outside the page's CSP
# and only watches the #state element).
RECORD_STATES = """
window.__states = [];
new MutationObserver(() => {
  const el = document.getElementById("state");
  if (el && window.__states[window.__states.length - 1] !== el.dataset.state) window.__states.push(el.dataset.state);
}).observe(document, {subtree: true, childList: true, characterData: true, attributes: true});
"""


async def in_call(api: httpx.AsyncClient, room_id: str) -> set[str]:
    call = await api.get(f"/api/v1/rooms/{room_id}/call")
    return {p["id"] for p in call.json()["participants"]} if call.status_code == 200 else set()


async def eventually(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 40) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, f"{what} did not happen in {seconds:g} s"
        await asyncio.sleep(0.2)


async def grant(api: httpx.AsyncClient, room_id: str, name: str) -> dict[str, Any]:
    minted = await api.post(f"/api/v1/rooms/{room_id}/publish-token", json={"participantName": name})
    assert minted.status_code == 201, minted.text
    return dict(minted.json())


async def states(page: Page) -> list[str]:
    return list(await page.evaluate("window.__states"))


async def shown(page: Page) -> tuple[str, str]:
    return (await page.locator("#state").text_content() or ""), (await page.locator("#message").text_content() or "")


async def until_shown(page: Page, *wanted: str, timeout_ms: float = 30_000) -> None:
    shows = "(wanted) => wanted.includes(document.getElementById('state').dataset.state)"
    await page.wait_for_function(shows, arg=list(wanted), timeout=timeout_ms)


async def open_publishing(browser: Browser, api: httpx.AsyncClient, room_id: str, token: str) -> Page:
    page = await browser.new_page()
    await page.add_init_script(RECORD_STATES)
    await page.goto(f"{api.base_url}/rooms/{room_id}/publish#token={token}")
    await page.click("#publish")
    await until_shown(page, "publishing", "error")
    assert await shown(page) == ("publishing", ""), await shown(page)
    return page


@pytest.mark.skipif(not CHROMIUM.exists(), reason=NO_CHROMIUM)
async def test_the_publish_page_publishes_again_on_a_restarted_recorder(stacks: StackFactory, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    stack = await stacks.start()
    api = stack.api
    room_id = await create_room(api, "Reconnecting page")
    publisher = await grant(api, room_id, "Browser")
    me = publisher["participantId"]

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = await open_publishing(browser, api, room_id, publisher["token"])
            await eventually(lambda: has(api, room_id, me), "joining the call")
            before = len(await states(page))

            await stacks.restart_recorder(stack)  # the old recorder is gone: its `left` went out as it stopped

            back = "(before) => window.__states.length > before + 1 && window.__states.at(-1) === 'publishing'"
            await page.wait_for_function(back, arg=before, timeout=60_000)
            await eventually(lambda: has(api, room_id, me), "coming back on the new recorder (by its media)")
            after = (await states(page))[before:]
            assert "reconnecting" in after and after[-1] == "publishing", after
            assert "error" not in after and "stopped" not in after, after

            # The new recorder records what the page now sends: Chromium's fake camera.
            started = await api.post("/api/v1/recordings", json={"roomId": room_id})
            assert started.status_code == 201, started.text
            recording_id = started.json()["recordingId"]
            await asyncio.sleep(3)
            assert (await api.post(f"/api/v1/recordings/{recording_id}/stop")).status_code == 202
            rec = await wait_for_status(api, recording_id, {"complete", "failed"})
            assert rec["status"] == "complete", rec

            await page.click("#stop")
            await until_shown(page, "stopped")
            await eventually(lambda: gone(api, room_id, me), "leaving the call on Stop")
        finally:
            await browser.close()

    media = await api.get(f"/api/v1/recordings/{recording_id}/media")
    assert media.status_code == 200
    path = tmp_path / "after-restart.mp4"
    path.write_bytes(media.content)
    frames = video_frames(path)
    assert frames, "no video"
    assert all(fake_camera_share(image) > 0.3 for _, image in frames[len(frames) // 2 :]), "not the fake camera"


async def has(api: httpx.AsyncClient, room_id: str, participant: str) -> bool:
    return participant in await in_call(api, room_id)


async def gone(api: httpx.AsyncClient, room_id: str, participant: str) -> bool:
    return participant not in await in_call(api, room_id)


async def test_publish_until_publishes_again_on_a_restarted_recorder(stacks: StackFactory) -> None:
    stack = await stacks.start()
    api = stack.api
    room_id = await create_room(api, "Reconnecting publisher")
    publisher = await grant(api, room_id, "Robot")
    me = publisher["participantId"]
    seen: list[tuple[str, str]] = []
    stop = asyncio.Event()

    def tracks() -> list[Any]:
        return list(publisher_tracks("blue", 440.0, width=160, height=90))

    task = asyncio.create_task(
        publish_until(publisher["whipUrl"], publisher["token"], tracks, stop, on_state=lambda s, d: seen.append((s, d)))
    )
    try:
        await eventually(lambda: has(api, room_id, me), "joining the call")
        await stacks.restart_recorder(stack)  # the old recorder is gone: its `left` went out as it stopped
        await eventually(lambda: has(api, room_id, me), "coming back on the new recorder (by its media)")

        async def published_twice() -> bool:
            return [s for s, _ in seen].count("publishing") >= 2

        await eventually(published_twice, "a second session")
    finally:
        stop.set()
        connects = await asyncio.wait_for(task, 30)
    assert connects >= 2, seen
    names = [s for s, _ in seen]
    assert names[0] == "connecting" and names[-1] == "stopped", seen
    assert "reconnecting" in names[names.index("publishing") :], seen
    await eventually(lambda: gone(api, room_id, me), "leaving the call once stopped (the DELETE)")


async def test_the_command_line_publisher_survives_a_recorder_restart(stacks: StackFactory) -> None:
    """The README's demo publisher (`python -m callrec.media.testsignals`) as a process of its own."""
    stack = await stacks.start()
    api = stack.api
    room_id = await create_room(api, "Command line")
    publisher = await grant(api, room_id, "Bot")
    me = publisher["participantId"]
    command = [sys.executable, "-m", "callrec.media.testsignals", "--whip-url", publisher["whipUrl"]]
    command += ["--token", publisher["token"], "--seconds", "120", "--width", "160", "--height", "90"]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    lines: list[str] = []

    async def read() -> None:
        assert process.stdout is not None
        async for line in process.stdout:
            lines.append(line.decode(errors="replace").rstrip())

    reader = asyncio.create_task(read())
    try:
        await eventually(lambda: has(api, room_id, me), "joining the call")
        await stacks.restart_recorder(stack)

        async def published_twice() -> bool:
            return sum(line.startswith("publishing to ") for line in lines) >= 2

        await eventually(published_twice, "publishing again")
        await eventually(lambda: has(api, room_id, me), "coming back on the new recorder (by its media)")
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        status = await asyncio.wait_for(process.wait(), 30)
        await reader
    assert status == 0, lines
    assert any(line.startswith("reconnecting: the connection closed") for line in lines), lines
    assert lines[-1] == "done: connected 2 time(s)", lines
    await eventually(lambda: gone(api, room_id, me), "leaving the call on Ctrl-C (the DELETE)")


@pytest.mark.skipif(not CHROMIUM.exists(), reason=NO_CHROMIUM)
async def test_a_revoked_token_ends_the_retrying_with_the_reason(stacks: StackFactory) -> None:
    from playwright.async_api import async_playwright

    # A short media timeout renews presence often: the recorder hears of the revocation within 1.5 s.
    stack = await stacks.start(whip_media_timeout_s=1.5)
    api = stack.api
    room_id = await create_room(api, "Revoked")
    page_grant, robot_grant = await grant(api, room_id, "Browser"), await grant(api, room_id, "Robot")
    seen: list[tuple[str, str]] = []
    stop = asyncio.Event()

    def tracks() -> list[Any]:
        return list(publisher_tracks("green", 550.0, width=160, height=90))

    robot = asyncio.create_task(
        publish_until(
            robot_grant["whipUrl"], robot_grant["token"], tracks, stop, on_state=lambda s, d: seen.append((s, d))
        )
    )
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = await open_publishing(browser, api, room_id, page_grant["token"])
            await eventually(lambda: has(api, room_id, robot_grant["participantId"]), "the robot joining")

            assert (await api.post(f"/api/v1/rooms/{room_id}/secrets/rotate")).status_code == 200

            await until_shown(page, "error", timeout_ms=60_000)
            state, message = await shown(page)
            assert message.startswith("401: ") and "revoked" in message, message
            assert "reconnecting" in await states(page)  # it tried once more, and the answer ended it
            assert await page.locator("#publish").is_enabled()  # back to the start: a new token may be pasted
            await asyncio.sleep(1)
            assert (await states(page))[-1] == "error"  # and it stays there: no more attempts
        finally:
            await browser.close()

    with pytest.raises(WhipError) as refused:
        await asyncio.wait_for(robot, 60)
    assert refused.value.status == 401 and "revoked" in refused.value.body
    assert seen[-1][0] == "stopped" and "revoked" in seen[-1][1], seen
    await eventually(lambda: gone(api, room_id, page_grant["participantId"]), "the page leaving the call")
    await eventually(lambda: gone(api, room_id, robot_grant["participantId"]), "the robot leaving the call")


async def test_publish_until_notices_a_recorder_that_vanished_without_a_word(tmp_path: Path) -> None:
    """A killed recorder sends no DTLS close and aiortc has no `disconnected` state (its consent checks give up
    after about 30 s): the receiver's RTCP reports going silent tells the publisher within seconds."""
    from tests.integration.test_whip import ROOM, running_recorder, token

    seen: list[str] = []
    stop = asyncio.Event()

    def tracks() -> list[Any]:
        return list(publisher_tracks("red", 440.0, width=160, height=90))

    async with running_recorder(tmp_path) as running:
        task = asyncio.create_task(
            publish_until(running.endpoint(ROOM), token(), tracks, stop, on_state=lambda s, d: seen.append(s))
        )
        try:

            async def sessions(count: int) -> bool:
                return seen.count("publishing") >= count and len(running.whip.sessions) == 1

            await eventually(lambda: sessions(1), "publishing")
            [first] = running.whip.sessions.values()
            for transceiver in first.pc.getTransceivers():  # its sockets vanish, as a killed process's do
                await transceiver.receiver.transport.transport.stop()
            await eventually(lambda: sessions(2), "publishing again", seconds=30)
            assert first.id not in running.whip.sessions
        finally:
            stop.set()
            connects = await asyncio.wait_for(task, 30)
    assert connects == 2
    assert seen == ["connecting", "publishing", "disconnected", "reconnecting", "publishing", "stopped"], seen
