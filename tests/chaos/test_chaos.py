"""Faults while recordings run: every recording still reaches the status it would have reached, once.

Each test runs callrec as separate processes (tests/chaos/harness.py) and kills or stops parts of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from moto.server import ThreadedMotoServer

from callrec.domain import signing
from callrec.media.probe import probe_recording
from tests.chaos.harness import ChaosStack
from tests.conftest import SECRET, free_port, s3_overrides
from tests.helpers import OCS, backend_callback, mp4_bytes, stored_keys
from tests.recording_server import ScriptedRecordingServer

pytestmark = pytest.mark.timeout(420)


@pytest.fixture
async def chaos(tmp_path: Path) -> AsyncIterator[ChaosStack]:
    stack = ChaosStack(tmp_path)
    try:
        await stack.start()
        yield stack
    finally:
        await stack.close()


async def talk(stack: ChaosStack, method: str, room_id: str) -> None:
    """Start (video) or stop as a Talk client would; answers at once, whatever the worker is doing."""
    response = await stack.api.request(method, f"{OCS}/recording/{room_id}", json={"status": 1})
    assert response.status_code == 200, response.text


async def restart_worker(stack: ChaosStack, killed_in: list[str], room_ids: list[str]) -> None:
    killed_in += await stack.statuses(room_ids)
    stack.kill("worker")
    await asyncio.sleep(0.5)
    stack.start_part("worker")


async def test_worker_killed_in_every_phase(chaos: ChaosStack) -> None:
    rooms = [await chaos.room_in_a_call(f"Chaos {n}") for n in range(3)]
    killed_in: list[str] = []

    await asyncio.gather(*(talk(chaos, "POST", room) for room in rooms))
    await restart_worker(chaos, killed_in, rooms)  # while starting
    await chaos.wait_for(rooms, {"active"})
    await asyncio.sleep(1)
    await restart_worker(chaos, killed_in, rooms)  # while recording
    await asyncio.sleep(1.5)

    await asyncio.gather(*(talk(chaos, "DELETE", room) for room in rooms))
    await restart_worker(chaos, killed_in, rooms)  # while ending: the recorder finishes and uploads
    first = await chaos.wait_for(rooms[:1], {"complete", "failed"})
    await restart_worker(chaos, killed_in, rooms)  # others validating, the first one notifying
    done = await chaos.wait_for(rooms, {"complete", "failed"})

    assert {"starting", "active", "ending"} <= set(killed_in), killed_in
    assert first[0]["status"] == "complete"
    assert [r["status"] for r in done] == ["complete"] * 3, done
    store = chaos.store
    assert store is not None
    for room, recording in zip(rooms, done, strict=True):
        assert recording["duration"] > 1
        assert await store.list_keys(f"recordings/{room}/") == stored_keys(room, recording["recordingId"])
        assert await chaos.notifications_of(recording["recordingId"]) == ["record_file_stored"]
        assert await chaos.chat_of(room) == ["recording_started", "recording_stopped"]
    assert await store.list_keys("staging/") == []


async def test_temporal_restarts_mid_recording(chaos: ChaosStack) -> None:
    room = await chaos.room_in_a_call()
    await talk(chaos, "POST", room)
    await chaos.wait_for([room], {"active"})

    chaos.stop("temporal")  # its state is in SQLite; the worker and the API keep retrying
    await asyncio.sleep(2)
    await chaos.start_temporal()

    await talk(chaos, "DELETE", room)
    [done] = await chaos.wait_for([room], {"complete", "failed"})
    assert done["status"] == "complete" and done["duration"] > 2
    media = await chaos.api.get(f"/api/v1/recordings/{done['recordingId']}/media")
    assert media.status_code == 200 and media.content[4:8] == b"ftyp"


async def test_object_store_down_during_upload_and_validation(tmp_path: Path) -> None:
    port = free_port()
    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    s3.start()
    stack = ChaosStack(tmp_path, **cast(dict[str, Any], s3_overrides(f"127.0.0.1:{port}")))
    try:
        await stack.start()
        store = stack.store
        assert store is not None
        room = await stack.room_in_a_call()
        await talk(stack, "POST", room)
        await stack.wait_for([room], {"active"})
        await asyncio.sleep(2)

        s3.stop()  # the recorder's upload meets a store that is down: 503, and it retries
        await talk(stack, "DELETE", room)
        await asyncio.sleep(2.5)
        s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        s3.start()
        for _ in range(600):  # the moment the upload is staged, the store goes away again: validation waits
            if await store.list_keys("staging/"):
                s3.stop()
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the upload never reached the store")
        await asyncio.sleep(3)
        s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        s3.start()

        [done] = await stack.wait_for([room], {"complete", "failed"})
        assert done["status"] == "complete", done
        key = f"recordings/{room}/{done['recordingId']}.mp4"
        assert await store.list_keys("recordings/") == stored_keys(room, done["recordingId"])
        assert await store.list_keys("staging/") == []
        local = tmp_path / "stored.mp4"
        await store.download(key, local)
        assert local.stat().st_size == done["size"]
        assert probe_recording(local, "video").duration_s > 1.5  # whole and playable, nothing half-written
    finally:
        await stack.close()
        s3.stop()


async def test_api_killed_during_an_upload(
    tmp_path: Path, scripted: ScriptedRecordingServer, memory_mp4: bytes
) -> None:
    stack = ChaosStack(
        tmp_path, recorder=False, egress="talk", talk_recording_server=f"http://127.0.0.1:{scripted.port}"
    )
    try:
        await stack.start()
        room = await stack.room_in_a_call()
        await talk(stack, "POST", room)
        await scripted.wait_for("start")
        assert (await backend_callback(stack.api, SECRET, "started", {"token": room, "status": 1})).status_code == 200
        await stack.wait_for([room], {"active"})
        await talk(stack, "DELETE", room)
        await scripted.wait_for("stop")

        async def slow_body() -> AsyncIterator[bytes]:
            yield memory_mp4
            for _ in range(200):
                yield bytes(2**20)
                await asyncio.sleep(0.02)

        uploading = asyncio.create_task(
            stack.api.post(f"{OCS}/recording/{room}/store", content=multipart(slow_body()), headers=store_headers(room))
        )
        staging = stack.settings.objects_dir / "staging"
        for _ in range(500):  # the upload is being written to the store
            if staging.exists() and any(staging.rglob("*")):
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
        stack.kill("api")
        with pytest.raises(httpx.HTTPError):
            await uploading
        leftovers = [p for p in staging.rglob("*") if p.is_file()]
        assert leftovers, "the killed upload left nothing to clean up: the test did not kill it mid-write"

        stack.start_part("api")
        await stack.wait_until_serving()
        retried = await stack.api.post(
            f"{OCS}/recording/{room}/store", content=multipart(one_chunk(memory_mp4)), headers=store_headers(room)
        )
        assert retried.status_code == 200, retried.text
        [done] = await stack.wait_for([room], {"complete", "failed"})
        assert done["status"] == "complete" and done["size"] == len(memory_mp4)

        report = stack.run_cli("ops", "reconcile", "--min-age", "0")
        assert [p for p in staging.rglob("*") if p.is_file()] == [], report
        assert await stack.store.list_keys("staging/") == []  # type: ignore[union-attr]
    finally:
        await stack.close()


@pytest.fixture
def memory_mp4(tmp_path: Path) -> bytes:
    return mp4_bytes(tmp_path)


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


BOUNDARY = "chaos-boundary"


async def multipart(file: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The recording server's upload: `owner`, then `file`, streamed."""
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="owner"\r\n\r\napi-key\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="call.mp4"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()
    async for chunk in file:
        yield chunk
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def store_headers(room: str) -> dict[str, str]:
    return signing.signed_headers(SECRET, room.encode()) | {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
