"""The publish page in a real browser: Debian's Chromium (fake camera and microphone) publishes by WHIP into a room
of the whole stack, and the built-in recorder's MP4 holds Chromium's fake-camera picture and its beep.

Chromium's fake camera draws a green picture with a rotating bright-green disc and a running clock; its fake
microphone beeps (full scale, a few tens of ms) about twice a second. Playwright drives the system binary:
browsers are never downloaded.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
import httpx
import numpy as np
import pytest

from tests.conftest import StackFactory
from tests.helpers import create_room, wait_for_status

if TYPE_CHECKING:
    from playwright.async_api import Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", "--no-sandbox"]
NO_CHROMIUM = "needs Debian's chromium at /usr/bin/chromium (apt-get install chromium; .ci/run does)"
RECORD_S = 4.0


async def call_names(api: httpx.AsyncClient, room_id: str) -> list[str]:
    response = await api.get(f"/api/v1/rooms/{room_id}/call")
    if response.status_code == 404:  # no active call: nobody in it
        return []
    assert response.status_code == 200, response.text
    return [p["name"] for p in response.json()["participants"]]


async def wait_for_names(api: httpx.AsyncClient, room_id: str, present: bool, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while ("Browser" in await call_names(api, room_id)) != present:
        assert time.monotonic() < deadline, f"Browser {'never joined' if present else 'never left'} the call"
        await asyncio.sleep(0.2)


async def wait_for_state(page: Page, state: str, timeout_ms: int = 30_000) -> None:
    """Waits until the page shows `state`, or an error (then fails with the page's message)."""
    await page.wait_for_function(
        "([state]) => [state, 'error'].includes(document.getElementById('state').dataset.state)",
        arg=[state],
        timeout=timeout_ms,
    )
    shown = await page.locator("#state").text_content()
    assert shown == state, f"the page shows {shown}: {await page.locator('#message').text_content()}"


def video_frames(path: Path) -> list[tuple[float, np.ndarray]]:
    with av.open(str(path)) as container:
        return [(float(f.time or 0.0), f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]


def audio_samples(path: Path) -> tuple[np.ndarray, int]:
    """The audio track as mono float samples in [-1, 1], and its rate."""
    chunks: list[np.ndarray] = []
    rate = 48000
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.rate or rate
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
    return (np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)), rate


def fake_camera_share(frame: np.ndarray) -> float:
    """How much of the picture is the fake camera's green (dark green ground or bright green disc)."""
    r, g, b = (frame[..., i].astype(int) for i in range(3))
    return float(np.mean((g > 90) & (g > r + 50) & (g > b + 50)))


def beep_onsets(samples: np.ndarray, rate: int) -> list[float]:
    """Start times of loud bursts, from 10 ms windows."""
    window = rate // 100
    peaks = np.abs(samples[: len(samples) // window * window]).reshape(-1, window).max(axis=1)
    loud = peaks > 0.2
    return [i / 100 for i in range(1, len(loud)) if loud[i] and not loud[i - 1]]


async def test_the_publish_page_serves_with_a_strict_policy(stacks: StackFactory) -> None:
    stack = await stacks.start(recorder=False)
    room_id = await create_room(stack.api, "Page room")
    async with httpx.AsyncClient(base_url=stack.api.base_url) as anonymous:
        page = await anonymous.get(f"/rooms/{room_id}/publish")
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert page.headers["X-Frame-Options"] == "DENY"
    nonce = re.search(r"script-src 'nonce-([^']+)'", page.headers["Content-Security-Policy"])
    assert nonce and f'<script nonce="{nonce.group(1)}">' in page.text
    assert f"<code>{room_id}</code>" in page.text
    again = await stack.api.get(f"/rooms/{room_id}/publish")
    assert nonce.group(1) not in again.headers["Content-Security-Policy"]  # a fresh nonce each time

    for bad in ["%3Cscript%3Ealert(1)%3C%2Fscript%3E", "UPPER", "-dash", "a" * 129]:
        refused = await stack.api.get(f"/rooms/{bad}/publish")
        assert refused.status_code == 404, bad
        assert refused.headers["Content-Type"] == "application/json"
        assert "<script>" not in refused.text


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
)
async def test_a_browser_publishes_its_camera_into_a_recording(stacks: StackFactory, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright, expect

    stack = await stacks.start()
    api = stack.api
    room_id = await create_room(api, "Browser room")
    minted = await api.post(f"/api/v1/rooms/{room_id}/publish-token", json={"participantName": "Browser"})
    assert minted.status_code == 201, minted.text
    token = minted.json()["token"]

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await page.goto(f"{api.base_url}/rooms/{room_id}/publish#token=not-a-token")
            assert "not-a-token" not in page.url  # the page wipes the token from the address bar
            await expect(page.locator("#state")).to_have_text("idle")
            await page.click("#publish")
            await expect(page.locator("#state")).to_have_text("error")
            await expect(page.locator("#message")).to_have_text(re.compile(r"^401: \w"))  # with the server's message

            await page.fill("#token", token)  # the form takes a token too
            await page.click("#publish")
            await wait_for_state(page, "publishing")
            await expect(page.locator("#recording")).to_have_text("This room is not being recorded", timeout=10_000)
            await wait_for_names(api, room_id, present=True)

            started = await api.post("/api/v1/recordings", json={"roomId": room_id})
            assert started.status_code == 201, started.text
            recording_id = started.json()["recordingId"]
            await expect(page.locator("#recording")).to_have_text("This room is being recorded", timeout=10_000)
            await asyncio.sleep(RECORD_S)
            stopped = await api.post(f"/api/v1/recordings/{recording_id}/stop")
            assert stopped.status_code == 202, stopped.text
            rec: dict[str, Any] = await wait_for_status(api, recording_id, {"complete", "failed"})
            assert rec["status"] == "complete", rec
            await expect(page.locator("#recording")).to_have_text("This room is not being recorded", timeout=10_000)

            await page.click("#stop")
            await wait_for_state(page, "stopped")
            await wait_for_names(api, room_id, present=False)
            assert await page.locator("#message").text_content() == ""
        finally:
            await browser.close()

    media = await api.get(f"/api/v1/recordings/{recording_id}/media")
    assert media.status_code == 200
    path = tmp_path / "browser.mp4"
    path.write_bytes(media.content)

    frames = video_frames(path)
    assert frames and frames[-1][0] >= RECORD_S - 1.5, f"{len(frames)} frames"
    assert all(fake_camera_share(image) > 0.3 for _, image in frames[len(frames) // 4 :]), "not the fake camera"
    # The disc turns and the clock runs: pictures a second apart differ (a name tile would not).
    step = max(1, round(len(frames) / frames[-1][0]))
    pairs = list(zip(frames[len(frames) // 4 :: step], frames[len(frames) // 4 + step :: step], strict=False))
    assert pairs
    for (_, a), (_, b) in pairs:
        changed = np.mean(np.abs(a.astype(int) - b.astype(int)).max(axis=2) > 60)
        assert changed > 0.01, f"the picture did not change ({changed:.4f} of pixels)"

    samples, rate = audio_samples(path)
    assert len(samples) >= (RECORD_S - 1.5) * rate
    onsets = beep_onsets(samples, rate)
    assert len(onsets) >= 3, f"beeps at {onsets}"
    assert np.mean(np.abs(samples) > 0.2) < 0.5, "not a beep: loud all the time"
    gaps = np.diff(onsets)
    assert 0.25 <= float(np.median(gaps)) <= 1.5, f"beeps at {onsets}"
