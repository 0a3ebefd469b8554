"""The web console in real Chromium against the whole stack: sign in, a room, live recording control with an
override, playing with seeking by ranges, sharing to a browser without a session, a ZIP, deleting, a failure's
reason, hostile names as text, a member confined to its room, and start/stop by keyboard alone.

Screenshots of each page go to `<pytest's base temp>/console-screenshots` (printed; not committed)."""

from __future__ import annotations

import asyncio
import io
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import API_KEY, SECRET, StackFactory
from tests.e2e.test_publish_page import CHROMIUM, NO_CHROMIUM
from tests.helpers import SMALL, backend_callback, create_room, join

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=NO_CHROMIUM)

HOSTILE = "<script>alert('x')</script> \"Bob's\" room"
RECORDING_WAIT_MS = 60_000


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"],
        )
        yield chromium
        await chromium.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.getbasetemp() / "console-screenshots"
    directory.mkdir(exist_ok=True)
    print(f"console screenshots: {directory}")
    return directory


async def new_page(browser: Any, base: str, **options: Any) -> Any:
    context = await browser.new_context(base_url=base, accept_downloads=True, **options)
    page = await context.new_page()
    dialogs: list[str] = []

    async def on_dialog(dialog: Any) -> None:  # only the delete confirmation may ask; a script alert never
        dialogs.append(dialog.message)
        await (dialog.accept() if dialog.message.startswith("Delete") else dialog.dismiss())

    page.on("dialog", on_dialog)
    page.dialogs = dialogs
    return page


async def sign_in_as_admin(page: Any, shots: Path) -> None:
    await page.goto("/console")
    assert "/console/sign-in" in page.url  # not signed in: the sign-in page
    await page.screenshot(path=shots / "sign-in.png", full_page=True)
    await page.fill("#api-key", API_KEY)
    await page.press("#api-key", "Enter")
    await page.wait_for_url("**/console/rooms")


async def state_is(page: Any, status: str) -> None:
    await page.wait_for_function(
        "s => document.getElementById('rec-state').textContent === s", arg=status, timeout=RECORDING_WAIT_MS
    )


async def test_an_admin_records_plays_shares_downloads_and_deletes(
    stacks: StackFactory, browser: Any, shots: Path
) -> None:
    stack = await stacks.start()
    base = str(stack.api.base_url)
    page = await new_page(browser, base)
    await sign_in_as_admin(page, shots)
    await page.screenshot(path=shots / "rooms.png", full_page=True)
    cookies = {c["name"]: c for c in await page.context.cookies()}
    assert cookies["callrec_session"]["httpOnly"] and cookies["callrec_session"]["sameSite"] == "Strict"
    assert await page.evaluate("() => document.cookie") == ""  # nothing a script could read or send elsewhere
    headers = (await page.request.get("/console/rooms")).headers
    assert "unsafe-inline" not in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert (headers["x-content-type-options"], headers["referrer-policy"]) == ("nosniff", "no-referrer")

    # create a room with a hostile name: it shows as text, and no script of it runs
    await page.fill("#new-name", HOSTILE)
    await page.click("button:has-text('Create room')")
    await page.wait_for_url("**/console/rooms/*")
    room_id = page.url.rsplit("/", 1)[1]
    await page.wait_for_function("() => document.title.startsWith('<script>')")
    assert await page.text_content("#room-title") == f"{HOSTILE} {room_id}"
    await page.screenshot(path=shots / "room.png", full_page=True)

    # set the room's layout; small pictures for a quick test (the API's custom encoding shows as "custom")
    await stack.api.put(f"/api/v1/rooms/{room_id}/config", json={"config": {"recording": {"encoding": SMALL}}})
    await page.reload()
    await page.wait_for_function("() => document.getElementById('cfg-encoding').value === 'custom'")
    await page.select_option("#cfg-layout", "speaker")
    await page.click("button:has-text('Save settings')")
    await page.wait_for_function("() => document.getElementById('status').textContent === 'Settings saved.'")
    config = (await stack.api.get(f"/api/v1/rooms/{room_id}/config")).json()["recording"]
    assert config["layout"] == "speaker" and config["encoding"] == SMALL | config["encoding"]
    moderator_link = await page.input_value("#moderator-link")
    assert f"/console/join/{room_id}?secret=" in moderator_link

    # Carol joins from the console: a publish link, opened, her (fake) camera published into the call
    await page.fill("#publish-name", "Carol")
    await page.click("button:has-text('Get a publish link')")
    await page.wait_for_selector("#publish-result:not([hidden])")
    publish_link = await page.get_attribute("#publish-link", "href")
    assert publish_link is not None and f"/rooms/{room_id}/publish#token=" in publish_link
    carol = await page.context.new_page()
    await carol.goto(publish_link)
    await carol.click("#publish")
    await carol.wait_for_function("() => document.getElementById('state').dataset.state === 'publishing'")
    await page.wait_for_function("() => document.getElementById('participants').textContent.includes('Carol')")

    # others join (the conferencing side reports them): the call list shows them, names as text
    await join(stack.api, room_id, "Alice", '<img src=x onerror=alert(1)> "Eve"')
    await page.wait_for_function("() => document.getElementById('participants').children.length === 3")
    assert '<img src=x onerror=alert(1)> "Eve"' in await page.text_content("#participants")

    # start with a layout for this recording only; the state goes active live, then stop: complete
    await page.select_option("#start-layout", "single-speaker")
    await page.click("#start-button")
    await state_is(page, "active")
    await page.screenshot(path=shots / "room-recording.png", full_page=True)
    await asyncio.sleep(1.5)
    await page.click("#stop-button")
    await state_is(page, "complete")
    recording = (await stack.api.get("/api/v1/recordings", params={"roomId": room_id})).json()["recordings"][0]
    assert (recording["status"], recording["layout"]) == ("complete", "single-speaker")
    assert (await stack.api.get(f"/api/v1/rooms/{room_id}/config")).json()["recording"]["layout"] == "speaker"
    recording_id = recording["recordingId"]

    # play it and seek to the middle: the media comes by ranges (206), never the whole file at once
    media: list[tuple[int, str | None]] = []
    page.on(
        "response",
        lambda r: media.append((r.status, r.request.headers.get("range"))) if "/media" in r.url else None,
    )
    await page.click("text=Open the recording")
    await page.wait_for_url(f"**/recording/{recording_id}")
    await page.wait_for_function("() => document.getElementById('player')?.readyState >= 1", timeout=20_000)
    duration = await page.evaluate("() => document.getElementById('player').duration")
    assert abs(duration - recording["duration"]) < 0.5
    await page.evaluate(
        """d => new Promise(done => { const v = document.getElementById('player');
        v.addEventListener('seeked', done, { once: true }); v.currentTime = d / 2; })""",
        duration,
    )
    assert media and all(status == 206 and rng for status, rng in media), media
    assert HOSTILE in await page.text_content("#meta")
    await page.screenshot(path=shots / "player.png", full_page=True)

    # the public share link plays in a browser without any session, and shows this recording only
    await page.click("#share-public")
    await page.wait_for_function("() => document.getElementById('share-url').value !== ''")
    shared = await page.input_value("#share-url")
    stranger = await new_page(browser, base)
    await stranger.goto(shared)
    await stranger.wait_for_function("() => document.getElementById('player')?.readyState >= 1", timeout=20_000)
    assert await stranger.locator("nav").count() == 0 and await stranger.locator("#share-public").count() == 0
    listing = await stranger.evaluate("() => fetch('/api/v1/recordings').then(r => r.status)")
    assert listing == 401
    await stranger.screenshot(path=shots / "shared-player.png", full_page=True)
    await stranger.context.close()

    # the recordings list: a row with what it is; select it, download the ZIP and open it; then delete it
    await page.goto(f"/console/recordings?roomId={room_id}")
    row = page.locator("#recordings tr").first
    await row.locator("text=single speaker").or_(row.locator("text=Single speaker")).wait_for()
    assert "complete" in await row.text_content()
    await page.screenshot(path=shots / "recordings.png", full_page=True)
    await page.set_viewport_size({"width": 360, "height": 740})  # a phone: nothing wider than the screen
    assert await page.evaluate("() => document.documentElement.scrollWidth") <= 360
    await page.emulate_media(color_scheme="dark")
    await page.screenshot(path=shots / "recordings-360-dark.png", full_page=True)
    await page.emulate_media(color_scheme="light")
    await page.set_viewport_size({"width": 1280, "height": 720})
    await row.locator("input[type=checkbox]").check()
    async with page.expect_download() as download_info:
        await page.click("#zip")
    archive = Path(await (await download_info.value).path())
    with zipfile.ZipFile(io.BytesIO(archive.read_bytes())) as opened:
        sizes = [info.file_size for info in opened.infolist()]
    assert sizes == [recording["size"]]

    await page.click("#delete")
    await page.wait_for_function(
        "() => document.getElementById('status').textContent.includes('1 recording(s) deleted')"
    )
    assert page.dialogs == ["Delete 1 recording(s)? This cannot be undone."]
    assert (await stack.api.get(f"/api/v1/recordings/{recording_id}")).status_code == 404

    # signing out ends the session: the console asks to sign in again
    await page.click("button:has-text('Sign out')")
    await page.wait_for_url("**/console/sign-in")
    await page.goto("/console/recordings")
    assert "/console/sign-in" in page.url
    await page.context.close()


async def test_a_member_by_keyboard_alone_and_a_failure_with_its_reason(
    stacks: StackFactory, browser: Any, shots: Path
) -> None:
    stack = await stacks.start()
    base = str(stack.api.base_url)
    room_id = await create_room(stack.api, "Keyboard room")
    other_id = await create_room(stack.api, "Other room")
    await join(stack.api, room_id, "Alice")
    await join(stack.api, other_id, "Bob")
    room = (await stack.api.get(f"/api/v1/rooms/{room_id}")).json()

    page = await new_page(browser, base)
    await page.goto(f"/console/join/{room_id}?secret={room['moderatorSecret']}")
    await page.screenshot(path=shots / "join.png", full_page=True)
    await page.focus("#member-name")
    await page.keyboard.type("Keyboard user")
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"**/console/rooms/{room_id}")

    # keyboard only: Tab to the start button, Enter; focus moves to Stop, Enter
    for _ in range(30):
        if await page.evaluate("() => document.activeElement?.id") == "start-button":
            break
        await page.keyboard.press("Tab")
    else:
        raise AssertionError("the start button is not reachable by Tab")
    await page.keyboard.press("Enter")
    await state_is(page, "active")
    assert await page.evaluate("() => document.activeElement.id") == "stop-button"
    await asyncio.sleep(1.0)
    await page.keyboard.press("Enter")
    await state_is(page, "complete")
    assert await page.text_content("#status") == "Recording complete"

    # a failure shows the reason a person can act on
    await page.keyboard.press("Enter")  # focus went back to Start
    await state_is(page, "active")
    reason = "Disk full on the recording server"
    answer = await backend_callback(stack.api, SECRET, "failed", {"token": room_id, "reason": reason})
    assert answer.status_code == 200
    await state_is(page, "failed")
    assert await page.text_content("#rec-reason") == f"Why: {reason}"
    await page.screenshot(path=shots / "room-failed.png", full_page=True)

    # a member of this room sees nothing of another room
    other = await page.evaluate("id => fetch('/api/v1/rooms/' + id + '/call').then(r => r.status)", other_id)
    assert other == 403
    await page.goto("/console/recordings")
    await page.locator("#recordings tr").first.wait_for()
    rooms = await page.locator("#recordings tr td:nth-child(3)").all_text_contents()
    assert rooms and set(rooms) == {"Keyboard room"}
    other_recording = await stack.api.post("/api/v1/recordings", json={"roomId": other_id})  # it records too
    await page.reload()
    await page.locator("#recordings tr").first.wait_for()
    assert set(await page.locator("#recordings tr td:nth-child(3)").all_text_contents()) == {"Keyboard room"}
    await page.goto(f"/console/rooms/{other_id}")
    assert page.url.endswith(f"/console/rooms/{room_id}")  # sent back to its own room

    # the session's API calls need the page's CSRF token: a request without it changes nothing
    forged = await page.evaluate(
        """id => fetch('/api/v1/recordings', { method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ roomId: id }) }).then(r => r.status)""",
        room_id,
    )
    assert forged == 403
    listed = (await stack.api.get("/api/v1/recordings", params={"roomId": room_id})).json()["recordings"]
    assert [r["status"] for r in listed] == ["failed", "complete"]
    await page.context.close()
    await stack.api.post(f"/api/v1/recordings/{other_recording.json()['recordingId']}/stop")
