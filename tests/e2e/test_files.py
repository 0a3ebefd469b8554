"""Deleting and downloading recordings (one, many, as a ZIP) on the real stack, with real recordings."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Stack, StackFactory, s3_overrides
from tests.helpers import PeakRss, add_finished_recording, create_room, join, record, stored_keys, wait_for_status

MiB = 1 << 20


async def media_of(api: httpx.AsyncClient, recording_id: str) -> bytes:
    response = await api.get(f"/api/v1/recordings/{recording_id}/media")
    assert response.status_code == 200, response.text
    return response.content


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def record_in_new_room(api: httpx.AsyncClient, name: str) -> dict[str, Any]:
    room_id = await create_room(api, name)
    await join(api, room_id, "Alice")
    rec = await record(api, room_id)
    assert rec["status"] == "complete", rec
    return rec


async def test_delete_one_and_many(stacks: StackFactory) -> None:
    stack = await stacks.start()
    api = stack.api
    room_id = await create_room(api)
    await join(api, room_id, "Alice")
    done = await record(api, room_id)
    assert done["status"] == "complete", done
    done_id = done["recordingId"]
    started = await api.post("/api/v1/recordings", json={"roomId": room_id})
    assert started.status_code == 201, started.text
    active_id = started.json()["recordingId"]
    unknown = f"{room_id}--EG_nothing--x1"

    # In progress: neither deleted nor downloadable.
    refused = await api.delete(f"/api/v1/recordings/{active_id}")
    assert refused.status_code == 409
    assert refused.json() == {
        "error": "Recording Error",
        "message": f"Recording '{active_id}' is not stopped yet",
    }
    assert (await api.get(f"/api/v1/recordings/{active_id}/download")).status_code == 409
    none = await api.get("/api/v1/recordings/download", params={"recordingIds": f"{active_id},{unknown}"})
    assert none.status_code == 400
    assert none.json()["error"] == "Recording Error"

    # Bulk, mixed: the finished one goes, the others are reported; a repeated id counts once.
    mixed = await api.delete(
        "/api/v1/recordings", params={"recordingIds": f"{done_id},{unknown}, {active_id},{done_id}"}
    )
    assert mixed.status_code == 400, mixed.text
    assert mixed.json() == {
        "message": "2 recording(s) could not be deleted",
        "deleted": [done_id],
        "failed": [
            {"recordingId": unknown, "error": f"Recording '{unknown}' not found"},
            {"recordingId": active_id, "error": f"Recording '{active_id}' is not stopped yet"},
        ],
    }
    assert (await api.get(f"/api/v1/recordings/{done_id}")).status_code == 404
    assert await stack.catalog.get_recording(done_id) is None
    assert await stack.store.list_keys(f"recordings/{room_id}/") == []
    assert (await api.get(f"/api/v1/recordings/{active_id}")).json()["status"] == "active"

    # Once stored it can be deleted: the object, anything left in staging, and the row.
    assert (await api.post(f"/api/v1/recordings/{active_id}/stop")).status_code == 202
    stopped = await wait_for_status(api, active_id, {"complete", "failed"})
    assert stopped["status"] == "complete", stopped
    leftover = f"staging/{active_id}/leftover.mp4"
    await stack.store.put_stream(leftover, chunks(b"half an upload"))
    assert await stack.store.list_keys(f"recordings/{room_id}/") == stored_keys(room_id, active_id)

    deleted = await api.delete(f"/api/v1/recordings/{active_id}")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"message": f"Recording '{active_id}' deleted successfully"}
    for path in ("", "/media", "/download"):
        gone = await api.get(f"/api/v1/recordings/{active_id}{path}")
        assert gone.status_code == 404, path
        assert gone.json() == {"error": "Recording Error", "message": f"Recording '{active_id}' not found"}
    assert await stack.store.list_keys("recordings/") == []
    assert await stack.store.list_keys("staging/") == []
    assert await stack.catalog.get_recording(active_id) is None
    assert (await api.get("/api/v1/recordings", params={"roomId": room_id})).json()["recordings"] == []
    again = await api.delete(f"/api/v1/recordings/{active_id}")
    assert again.status_code == 404
    assert again.json()["message"] == f"Recording '{active_id}' not found"
    all_unknown = await api.delete("/api/v1/recordings", params={"recordingIds": unknown})
    assert all_unknown.status_code == 400
    assert all_unknown.json()["deleted"] == []


@pytest.mark.parametrize("backend", ["local", "s3"])
async def test_download_one_and_a_zip(stacks: StackFactory, s3_endpoint: str, backend: str) -> None:
    stack = await stacks.start(**(s3_overrides(s3_endpoint) if backend == "s3" else {}))
    api = stack.api
    recs = await asyncio.gather(*(record_in_new_room(api, f"Room {n}") for n in range(3)))
    ids = [r["recordingId"] for r in recs]
    media = {r["filename"]: await media_of(api, r["recordingId"]) for r in recs}

    one = await api.get(f"/api/v1/recordings/{ids[0]}/download")
    assert one.status_code == 200
    assert one.content == media[recs[0]["filename"]]
    assert one.headers["Content-Disposition"] == f'attachment; filename="{recs[0]["filename"]}"'
    assert one.headers["Content-Type"] == "video/mp4"
    assert int(one.headers["Content-Length"]) == len(one.content) == recs[0]["size"]

    unknown = f"{recs[0]['roomId']}--EG_nothing--x1"
    asked = ",".join([ids[0], unknown, ids[1], ids[2], ids[1]])
    response = await api.get("/api/v1/recordings/download", params={"recordingIds": asked})
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/zip"
    assert response.headers["Content-Disposition"] == 'attachment; filename="recordings.zip"'
    assert int(response.headers["Content-Length"]) == len(response.content)
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.testzip() is None
        assert archive.namelist() == [r["filename"] for r in recs]  # in the order asked, the unknown id skipped
        for info in archive.infolist():
            assert info.compress_type == zipfile.ZIP_STORED
            assert info.file_size == info.compress_size == len(media[info.filename])
            assert archive.read(info) == media[info.filename]

    everything = await api.delete("/api/v1/recordings", params={"recordingIds": ",".join(ids)})
    assert everything.status_code == 200, everything.text
    assert everything.json() == {"message": "All recordings deleted successfully", "deleted": ids, "failed": []}
    assert await stack.store.list_keys("recordings/") == []
    assert await stack.store.list_keys("staging/") == []
    gone = await api.get("/api/v1/recordings/download", params={"recordingIds": ",".join(ids)})
    assert gone.status_code == 400
    assert gone.json() == {
        "error": "Recording Error",
        "message": "None of the provided recordings are available for ZIP download",
    }


async def test_ids_are_required_and_routes_do_not_collide(stacks: StackFactory) -> None:
    stack = await stacks.start(recorder=False)
    api = stack.api
    for params in ({}, {"recordingIds": ""}, {"recordingIds": " , ,"}):
        for method in ("GET", "DELETE"):
            path = "/api/v1/recordings/download" if method == "GET" else "/api/v1/recordings"
            response = await api.request(method, path, params=params)
            assert response.status_code == 422, (method, params, response.text)
            body = response.json()
            assert body["error"] == "Unprocessable Entity"
            assert [d["field"] for d in body["details"]] == ["recordingIds"]
    for method, path in [
        ("DELETE", "/api/v1/recordings/nope--EG_x--y"),
        ("GET", "/api/v1/recordings/nope--EG_x--y/download"),
    ]:
        response = await api.request(method, path)
        assert response.status_code == 404
        assert response.json() == {"error": "Recording Error", "message": "Recording 'nope--EG_x--y' not found"}
    unknown = await api.get("/api/v1/recordings/download", params={"recordingIds": "nope--EG_x--y"})
    assert unknown.status_code == 400
    assert (await api.get("/api/v1/recordings")).status_code == 200  # the list is still served


async def add_stored_recording(stack: Stack, recording_id: str, size: int) -> str:
    """A finished recording of `size` random bytes put straight into the store and catalog; returns its sha256."""
    digest = hashlib.sha256()

    async def random_chunks() -> AsyncIterator[bytes]:
        for start in range(0, size, MiB):
            chunk = os.urandom(min(MiB, size - start))
            digest.update(chunk)
            yield chunk

    await add_finished_recording(stack, recording_id, f"recordings/big/{recording_id}.mp4", random_chunks(), size)
    return digest.hexdigest()


async def test_a_large_zip_streams_with_flat_memory(stacks: StackFactory, tmp_path: Path) -> None:
    stack = await stacks.start(recorder=False)
    sizes = {"big--EG_a--1": 40 * MiB + 7, "big--EG_b--2": 1, "big--EG_c--3": 50 * MiB}
    digests = {rid: await add_stored_recording(stack, rid, size) for rid, size in sizes.items()}

    target = tmp_path / "recordings.zip"
    with PeakRss() as memory:
        async with stack.api.stream(
            "GET", "/api/v1/recordings/download", params={"recordingIds": ",".join(sizes)}
        ) as r:
            assert r.status_code == 200
            expected = int(r.headers["Content-Length"])
            received = 0
            with target.open("wb") as f:
                async for piece in r.aiter_raw():
                    f.write(piece)
                    received += len(piece)
    assert received == expected == target.stat().st_size
    assert expected > sum(sizes.values())
    # Server and client share this process: 90 MiB went through it, memory grew by a small fraction of that.
    assert memory.growth < 32 * MiB, f"grew {memory.growth / MiB:.1f} MiB"

    with zipfile.ZipFile(target) as archive:
        assert [i.filename for i in archive.infolist()] == [f"{rid}.mp4" for rid in sizes]
        for rid, size in sizes.items():
            info = archive.getinfo(f"{rid}.mp4")
            assert info.compress_type == zipfile.ZIP_STORED and info.file_size == size
            digest = hashlib.sha256()
            with archive.open(info) as member:  # checks the CRC while reading
                while block := member.read(MiB):
                    digest.update(block)
            assert digest.hexdigest() == digests[rid]


def open_files_under(directory: Path) -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(directory.resolve())):
            found.append(target)
    return found


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
async def test_a_zip_download_cut_short_releases_everything(stacks: StackFactory, tmp_path: Path) -> None:
    stack = await stacks.start(recorder=False)
    sizes = {"big--EG_a--1": 30 * MiB, "big--EG_b--2": 30 * MiB}
    for rid, size in sizes.items():
        await add_stored_recording(stack, rid, size)
    params = {"recordingIds": ",".join(sizes)}

    for _ in range(3):
        async with stack.api.stream("GET", "/api/v1/recordings/download", params=params) as r:
            assert r.status_code == 200
            received = 0
            async for piece in r.aiter_raw():
                received += len(piece)
                if received > 3 * MiB:
                    assert len(open_files_under(stack.settings.objects_dir)) == 1  # the store is reading
                    break  # the client goes away mid-file
        assert received < int(r.headers["Content-Length"])
    for _ in range(100):
        if not open_files_under(stack.settings.objects_dir):
            break
        await asyncio.sleep(0.05)
    assert open_files_under(stack.settings.objects_dir) == []

    whole = await stack.api.get("/api/v1/recordings/download", params=params)
    assert whole.status_code == 200 and len(whole.content) == int(whole.headers["Content-Length"])
