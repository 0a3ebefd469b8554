"""The page a shared recording URL opens (`GET /recordings/{id}/url` -> `/recording/{id}?secret=...`): served with
a strict policy, the secret passed on to the media endpoints, and the recording playing in real Chromium with no
credential but the link."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.conftest import StackFactory
from tests.e2e.test_publish_page import CHROMIUM, CHROMIUM_ARGS
from tests.helpers import create_room, join, record


async def shared_url(api: httpx.AsyncClient, recording_id: str, *, private: bool = False) -> str:
    answer = await api.get(f"/api/v1/recordings/{recording_id}/url", params={"privateAccess": str(private).lower()})
    assert answer.status_code == 200, answer.text
    url: str = answer.json()["url"]
    return url


async def test_the_shared_link_opens_a_player_on_the_media_endpoints(stacks: StackFactory) -> None:
    stack = await stacks.start()
    room_id = await create_room(stack.api, "Shared room")
    await join(stack.api, room_id, "Alice")
    recording = await record(stack.api, room_id, seconds=1.0)
    assert recording["status"] == "complete", recording
    recording_id = recording["recordingId"]

    url = await shared_url(stack.api, recording_id)
    parts = urlsplit(url)
    assert parts.path == f"/recording/{recording_id}"
    secret = parse_qs(parts.query)["secret"][0]
    async with httpx.AsyncClient(base_url=stack.api.base_url) as anonymous:  # no credential but the link
        page = await anonymous.get(f"{parts.path}?{parts.query}")
        assert page.status_code == 200, page.text
        assert page.headers["Content-Type"].startswith("text/html")
        assert page.headers["X-Frame-Options"] == "DENY"
        assert page.headers["Referrer-Policy"] == "no-referrer"
        policy = page.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy  # the console's script file only
        shown = re.search(r'data-recording="([^"]+)" data-secret="([^"]+)"', page.text)
        assert shown is not None and shown.groups() == (recording_id, secret), page.text
        assert "<nav" not in page.text  # no session: nothing of the console but this recording
        media_url = f"/api/v1/recordings/{recording_id}/media?recordingSecret={secret}"
        media = await anonymous.get(media_url)
        assert media.status_code == 200 and media.headers["Content-Type"] == "video/mp4"
        assert len(media.content) == recording["size"]

        # without a secret the page says what is missing, and a wrong secret plays nothing
        bare = await anonymous.get(parts.path)
        assert bare.status_code == 200 and 'id="screen"' not in bare.text and "no <code>secret</code>" in bare.text
        wrong = await anonymous.get(f"/api/v1/recordings/{recording_id}/media", params={"recordingSecret": "nope"})
        assert wrong.status_code == 400

        # what the URL carries is escaped, and what is not a recording id is refused
        hostile = await anonymous.get(parts.path, params={"secret": '"><script>alert(1)</script>'})
        assert hostile.status_code == 200 and "<script>" not in hostile.text
        assert 'data-secret="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in hostile.text
        for bad in ["not-a-recording", "%3Cscript%3E", "a--b--c"]:
            refused = await anonymous.get(f"/recording/{bad}")
            assert refused.status_code == 404, bad
            assert refused.headers["Content-Type"] == "application/json"  # never a page that echoes it
        sanitised = await anonymous.get("/recording/%3Cscript%3Eroom--EG_x--y")  # as Meet sanitises room ids
        assert sanitised.status_code == 200 and "<code>scriptroom--EG_x--y</code>" in sanitised.text

        # once the room's public access is off, the public link lets nobody in, and no new one is given
        off = await stack.api.put(
            f"/api/v1/rooms/{room_id}/config", json={"config": {"recording": {"publicAccess": False}}}
        )
        assert off.status_code == 200, off.text
        assert (await anonymous.get(media_url)).status_code == 401
        refused_url = await stack.api.get(f"/api/v1/recordings/{recording_id}/url")
        assert refused_url.status_code == 403, refused_url.text


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
)
async def test_a_browser_plays_a_shared_recording(stacks: StackFactory) -> None:
    from playwright.async_api import async_playwright

    stack = await stacks.start()
    room_id = await create_room(stack.api, "Played room")
    await join(stack.api, room_id, "Alice", "Bob")
    recording = await record(stack.api, room_id, seconds=2.0)
    assert recording["status"] == "complete", recording
    url = await shared_url(stack.api, recording["recordingId"])

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await page.goto(url)
            await page.wait_for_function(
                "() => { const v = document.getElementById('player'); return v && (v.readyState >= 1 || v.error); }",
                timeout=20_000,
            )
            error = await page.evaluate("() => document.getElementById('player').error?.message ?? null")
            assert error is None, error
            duration = await page.evaluate("() => document.getElementById('player').duration")
            assert abs(duration - recording["duration"]) < 0.5, (duration, recording["duration"])
            width = await page.evaluate("() => document.getElementById('player').videoWidth")
            assert width > 0  # a picture, not only sound
        finally:
            await browser.close()


async def test_the_player_follows_a_public_url_with_a_path(stacks: StackFactory) -> None:
    """Behind a proxy that serves the API under a path, the page's player and link go through that path."""
    stack = await stacks.start(recorder=False, public_url="https://proxy.example/callrec")
    page = await stack.api.get("/recording/room--EG_abc--xyz", params={"secret": "s3cret"})
    assert page.status_code == 200, page.text
    assert 'data-base="/callrec"' in page.text  # the script builds the media and download URLs on it
    assert '<script src="/callrec/console/static/console.js" defer></script>' in page.text
