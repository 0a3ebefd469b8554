"""A stored recording's poster and seek thumbnails on the real stack: made when it is stored, served with the media's
access rules (and 404 until it is finished), gone with it."""

from __future__ import annotations

import io
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
from PIL import Image

from tests.conftest import StackFactory
from tests.helpers import create_room, join, member_headers, stored_keys, wait_for_status

PICTURES = {"poster": "image/jpeg", "thumbnails.vtt": "text/vtt; charset=utf-8", "thumbnails.jpg": "image/jpeg"}


async def share_secret(api: httpx.AsyncClient, recording_id: str, private: bool) -> str:
    shared = await api.get(f"/api/v1/recordings/{recording_id}/url", params={"privateAccess": private})
    assert shared.status_code == 200, shared.text
    return parse_qs(urlsplit(shared.json()["url"]).query)["secret"][0]


def first_cue_url(track: str) -> str:
    lines = track.splitlines()
    assert lines[0] == "WEBVTT"
    return next(line for line in lines if "#xywh=" in line)


async def test_poster_and_thumbnails_are_served_like_the_media_and_deleted_with_it(stacks: StackFactory) -> None:
    stack = await stacks.start()
    api = stack.api
    room_id = await create_room(api, "Previews")
    other_room = await create_room(api, "Elsewhere")
    await join(api, room_id, "Alice", "Bob")
    started = await api.post("/api/v1/recordings", json={"roomId": room_id})
    assert started.status_code == 201, started.text
    recording_id = started.json()["recordingId"]
    base = f"/api/v1/recordings/{recording_id}"

    # Not finished: nothing to show yet.
    await wait_for_status(api, recording_id, {"active"})
    for path in PICTURES:
        assert (await api.get(f"{base}/{path}")).status_code == 404, path
    assert (await api.post(f"{base}/stop")).status_code == 202
    done = await wait_for_status(api, recording_id, {"complete", "failed"})
    assert done["status"] == "complete", done
    assert await stack.store.list_keys(f"recordings/{room_id}/") == stored_keys(room_id, recording_id)

    # The API key: each one with its type, private caching.
    for path, content_type in PICTURES.items():
        got = await api.get(f"{base}/{path}")
        assert got.status_code == 200, (path, got.text)
        assert got.headers["Content-Type"] == content_type
        assert got.headers["Cache-Control"].startswith("private")
        assert int(got.headers["Content-Length"]) == len(got.content)
    poster = Image.open(io.BytesIO((await api.get(f"{base}/poster")).content))
    assert (poster.format, poster.size) == ("JPEG", (320, 180))
    track = (await api.get(f"{base}/thumbnails.vtt")).text
    cue = first_cue_url(track)
    assert cue.startswith("thumbnails.jpg#xywh=0,0,160,90"), cue  # relative: the sprite next to the track
    sprite = await api.get(urljoin(f"{base}/thumbnails.vtt", cue.split("#")[0]))
    assert sprite.status_code == 200 and Image.open(io.BytesIO(sprite.content)).format == "JPEG"

    # Everyone else gets what the media endpoint gives them.
    public, private = [await share_secret(api, recording_id, p) for p in (False, True)]
    anonymous = httpx.AsyncClient(base_url=api.base_url, timeout=30)
    callers = {
        "nobody": (anonymous, {}, {}),
        "a wrong API key": (anonymous, {"X-API-KEY": "wrong"}, {}),
        "the room's moderator": (anonymous, await member_headers(api, room_id, "Mo"), {}),
        "the room's speaker": (anonymous, await member_headers(api, room_id, "Sp", "speaker"), {}),
        "another room's moderator": (anonymous, await member_headers(api, other_room, "Eve"), {}),
        "the public link": (anonymous, {}, {"recordingSecret": public}),
        "the private link alone": (anonymous, {}, {"recordingSecret": private}),
        "the private link with the API key": (api, {}, {"recordingSecret": private}),
        "a wrong secret": (api, {}, {"recordingSecret": "wrong"}),
    }
    seen = set()
    async with anonymous:
        for who, (client, headers, params) in callers.items():
            media = await client.get(f"{base}/media", headers=headers, params=params)
            for path in PICTURES:
                got = await client.get(f"{base}/{path}", headers=headers, params=params)
                assert got.status_code == media.status_code, (who, path, got.text)
                seen.add(got.status_code)

        # The shared link's track points at the sprite with the same secret, so the same caller can load it.
        shared = await anonymous.get(f"{base}/thumbnails.vtt", params={"recordingSecret": public})
        cue = first_cue_url(shared.text)
        assert cue.startswith(f"thumbnails.jpg?recordingSecret={public}#xywh="), cue
        tile = await anonymous.get(urljoin(str(shared.url), cue.split("#")[0]))
        assert tile.status_code == 200 and tile.headers["Content-Type"] == "image/jpeg"
    assert seen == {200, 400, 401, 403}

    # Deleted with the recording.
    assert (await api.delete(base)).status_code == 200
    assert await stack.store.list_keys(f"recordings/{room_id}/") == []
    for path in PICTURES:
        assert (await api.get(f"{base}/{path}")).status_code == 404, path
