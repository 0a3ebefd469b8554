"""What players and browsers use to cache a recording, against the real API on loopback: HEAD, ETag, Last-Modified,
revalidation (304), If-Range, If-Match (412), on the media and its previews, with the access rules of GET."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from callrec.media.previews import POSTER, SPRITE, THUMBNAILS, preview_key
from tests.conftest import Stack, StackFactory
from tests.helpers import add_finished_recording, create_room, member_headers, one_chunk

SIZE = 300_000
TRACK = b"WEBVTT\n\n00:00.000 --> 00:05.000\nthumbnails.jpg#xywh=0,0,160,90\n"
SAME_FOR_HEAD = ("Content-Length", "Content-Type", "Accept-Ranges", "Content-Range", "ETag", "Last-Modified")


async def put(stack: Stack, key: str, data: bytes) -> None:
    await stack.store.put_stream(key, one_chunk(data))


async def stored_recording(stack: Stack, room_id: str, name: str, *, with_sha256: bool = True) -> tuple[str, bytes]:
    """A finished recording put straight into the store and catalog, with its poster and seek thumbnails (or
    without its sha256, as LiveKit's egress stores them)."""
    data = os.urandom(SIZE)
    recording_id = f"{room_id}--EG_{name}--x1"
    key = f"recordings/{room_id}/{name}.mp4"
    await put(stack, preview_key(key, POSTER), b"\xff\xd8poster\xff\xd9")
    await put(stack, preview_key(key, THUMBNAILS), TRACK)
    await put(stack, preview_key(key, SPRITE), b"\xff\xd8sprite\xff\xd9")
    await add_finished_recording(
        stack,
        recording_id,
        key,
        one_chunk(data),
        SIZE,
        room_id=room_id,
        room_name="Caching",
        filename=f"{name}.mp4",
        end_date=1_700_000_000_000,
        sha256=hashlib.sha256(data).hexdigest() if with_sha256 else None,
    )
    return recording_id, data


def same_headers(head: httpx.Response, get: httpx.Response) -> None:
    assert head.status_code == get.status_code
    assert head.content == b""
    for name in SAME_FOR_HEAD:
        assert head.headers.get(name) == get.headers.get(name), name


async def test_head_answers_what_get_answers_without_the_body(stacks: StackFactory) -> None:
    stack = await stacks.start(recorder=False, metrics_public=True)
    api = stack.api
    room_id = await create_room(api, "Caching")
    recording_id, data = await stored_recording(stack, room_id, "head")
    base = f"/api/v1/recordings/{recording_id}"

    for path, headers in [
        ("media", {}),
        ("media", {"Range": "bytes=100-1099"}),
        ("media", {"Range": f"bytes={SIZE - 10}-"}),
        ("poster", {}),
        ("thumbnails.vtt", {}),
    ]:
        # HEAD first and then GET on the same connection: a body after the HEAD would break the next answer.
        head = await api.head(f"{base}/{path}", headers=headers)
        get = await api.get(f"{base}/{path}", headers=headers)
        assert get.status_code in (200, 206), get.text
        same_headers(head, get)
        assert int(get.headers["Content-Length"]) == len(get.content)
        assert get.headers["Cache-Control"] == "private, max-age=3600"
    ranged = await api.get(f"{base}/media", headers={"Range": "bytes=100-1099"})
    assert ranged.status_code == 206 and ranged.content == data[100:1100]
    assert ranged.headers["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'

    # With a link's secret the track's cues carry it: HEAD still says the length GET sends.
    shared = await api.get(f"{base}/url", params={"privateAccess": False})
    secret = httpx.URL(shared.json()["url"]).params["secret"]
    track = f"{base}/thumbnails.vtt"
    same_headers(
        await api.head(track, params={"recordingSecret": secret}),
        await api.get(track, params={"recordingSecret": secret}),
    )
    # Each preview has its own tag; none is the media's.
    tags = {(await api.head(f"{base}/{path}")).headers["ETag"] for path in ("media", "poster", "thumbnails.vtt")}
    assert len(tags) == 3

    # A HEAD past the end is the GET's 416.
    beyond = {"Range": f"bytes={SIZE}-"}
    head, get = await api.head(f"{base}/media", headers=beyond), await api.get(f"{base}/media", headers=beyond)
    assert head.status_code == get.status_code == 416
    assert head.headers["Content-Range"] == get.headers["Content-Range"] == f"bytes */{SIZE}"

    # HEADs are counted by their route, as GETs are.
    counted = {
        frozenset(sample.labels.items()): sample.value
        for family in text_string_to_metric_families((await api.get("/metrics")).text)
        for sample in family.samples
        if sample.name == "callrec_http_requests_total"
    }
    route = "/api/v1/recordings/<recording_id>/media"
    assert counted.get(frozenset({"route": route, "method": "HEAD", "status": "206"}.items()), 0) >= 2


async def test_a_head_without_access_is_refused_like_a_get(stacks: StackFactory) -> None:
    stack = await stacks.start(recorder=False)
    api = stack.api
    room_id = await create_room(api, "Caching")
    other_room = await create_room(api, "Elsewhere")
    recording_id, _ = await stored_recording(stack, room_id, "refused")
    shared = await api.get(f"/api/v1/recordings/{recording_id}/url", params={"privateAccess": False})
    public = httpx.URL(shared.json()["url"]).params["secret"]
    async with httpx.AsyncClient(base_url=api.base_url, timeout=30) as anonymous:
        callers = {
            "nobody": ({}, {}),
            "a wrong API key": ({"X-API-KEY": "wrong"}, {}),
            "another room's moderator": (await member_headers(api, other_room, "Eve"), {}),
            "the room's speaker": (await member_headers(api, room_id, "Sp", "speaker"), {}),
            "a wrong secret": ({}, {"recordingSecret": "wrong"}),
            "the public link": ({}, {"recordingSecret": public}),
        }
        statuses = {}
        for who, (headers, params) in callers.items():
            for path in ("media", "poster", "thumbnails.jpg"):
                url = f"/api/v1/recordings/{recording_id}/{path}"
                get = await anonymous.get(url, headers=headers, params=params)
                head = await anonymous.head(url, headers=headers, params=params)
                assert head.status_code == get.status_code, (who, path)
                assert head.content == b""
                # A revalidation is no way around the access check either.
                tag = (await api.head(url)).headers.get("ETag", '"none"')
                revalidated = await anonymous.head(url, headers={**headers, "If-None-Match": tag}, params=params)
                assert revalidated.status_code == (304 if get.status_code == 200 else get.status_code), (who, path)
            statuses[who] = get.status_code
    assert statuses["nobody"] == 401
    assert statuses["another room's moderator"] == 403
    assert statuses["a wrong secret"] == 400
    assert statuses["the room's speaker"] == statuses["the public link"] == 200


async def test_revalidation_if_range_and_if_match(stacks: StackFactory) -> None:
    stack = await stacks.start(recorder=False)
    api = stack.api
    room_id = await create_room(api, "Caching")
    recording_id, data = await stored_recording(stack, room_id, "revalidated")
    media = f"/api/v1/recordings/{recording_id}/media"
    first = await api.get(media)
    etag, stored = first.headers["ETag"], first.headers["Last-Modified"]

    # A browser's revalidation: 304 with the same validators and caching rules, no content.
    for conditions in ({"If-None-Match": etag}, {"If-None-Match": f'"other", W/{etag}'}, {"If-Modified-Since": stored}):
        again = await api.get(media, headers=conditions)
        assert again.status_code == 304, conditions
        assert again.content == b"" and again.headers.get("Content-Length") in (None, str(SIZE))
        assert "Transfer-Encoding" not in again.headers and "Content-Type" not in again.headers
        assert again.headers["ETag"] == etag and again.headers["Last-Modified"] == stored
        assert again.headers["Cache-Control"] == "private, max-age=3600"
    changed = await api.get(media, headers={"If-None-Match": '"an older file"', "If-Modified-Since": stored})
    assert changed.status_code == 200 and changed.content == data  # the tag says changed: the date does not count
    # A malformed date is ignored, never an error.
    assert (await api.get(media, headers={"If-Modified-Since": "9" * 5000})).status_code == 200

    # If-Range: the current tag or exact date keeps the range; a stale one gets the whole file.
    for validator in (etag, stored):
        resumed = await api.get(media, headers={"Range": "bytes=1000-1999", "If-Range": validator})
        assert resumed.status_code == 206 and resumed.content == data[1000:2000]
    for stale in ('"an older file"', f"W/{etag}", "Sat, 01 Jan 2000 00:00:00 GMT"):
        whole = await api.get(media, headers={"Range": "bytes=1000-1999", "If-Range": stale})
        assert whole.status_code == 200 and whole.content == data, stale
        assert "Content-Range" not in whole.headers

    # If-Match: 412 unless the strong tag matches.
    assert (await api.get(media, headers={"If-Match": etag})).status_code == 200
    failed = await api.get(media, headers={"If-Match": '"an older file"'})
    assert failed.status_code == 412 and failed.json()["error"] == "Precondition Failed"
    assert (await api.get(media, headers={"If-Unmodified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"})).status_code == 412

    # Stored without a sha256: a weak tag that revalidates, but never resumes a range.
    unhashed_id, unhashed_data = await stored_recording(stack, room_id, "unhashed", with_sha256=False)
    unhashed = f"/api/v1/recordings/{unhashed_id}/media"
    weak = (await api.head(unhashed)).headers["ETag"]
    assert weak.startswith('W/"')
    assert (await api.get(unhashed, headers={"If-None-Match": weak})).status_code == 304
    whole = await api.get(unhashed, headers={"Range": "bytes=0-9", "If-Range": weak})
    assert whole.status_code == 200 and whole.content == unhashed_data


async def test_curl_loading_the_media_twice_revalidates_with_its_etag(stacks: StackFactory, tmp_path: Path) -> None:
    stack = await stacks.start(recorder=False)
    api = stack.api
    room_id = await create_room(api, "Caching")
    recording_id, data = await stored_recording(stack, room_id, "curl")
    url = str(api.base_url.join(f"/api/v1/recordings/{recording_id}/media"))
    etags, out = tmp_path / "etag", tmp_path / "media"

    async def curl(*args: str) -> str:
        process = await asyncio.create_subprocess_exec(
            "curl", "-sS", "-H", f"X-API-KEY: {api.headers['X-API-KEY']}", "-o", str(out), "-w", "%{http_code}",
            *args, url, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        stdout, _ = await process.communicate()
        assert process.returncode == 0
        return stdout.decode()

    assert await curl("--etag-save", str(etags)) == "200"
    assert out.read_bytes() == data
    assert etags.read_text().strip() == f'"{hashlib.sha256(data).hexdigest()}"'
    out.unlink()
    assert await curl("--etag-compare", str(etags)) == "304"  # the second load: nothing sent again
    assert not out.exists() or out.read_bytes() == b""
