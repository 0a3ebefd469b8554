"""The recorder protocol under abuse: no lock-out of signed requests, no replay, bounded uploads that are
refused at once, against the real API served by granian."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from bench.uploads import multipart, raw_post, upload_body
from callrec.domain import signing
from tests.conftest import SECRET, Stack, StackFactory
from tests.e2e.test_failures import start_with_scripted_recorder
from tests.helpers import OCS, create_room, join, mp4_bytes, upload, wait_for_status
from tests.recording_server import ScriptedRecordingServer

FORGED = {signing.RANDOM_HEADER: "r" * 32, signing.CHECKSUM_HEADER: "0" * 64}


async def waiting_for_file(
    stacks: StackFactory, scripted: ScriptedRecordingServer, **overrides: object
) -> tuple[Stack, str, str]:
    """A stack on the scripted recording server and a recording it was told to stop: (stack, room, recording)."""
    stack = await stacks.start(
        recorder=False, egress="talk", talk_recording_server=f"http://127.0.0.1:{scripted.port}", **overrides
    )
    room_id = await create_room(stack.api)
    await join(stack.api, room_id, "Alice")
    recording_id = await start_with_scripted_recorder(stack.api, scripted, room_id)
    assert (await stack.api.post(f"/api/v1/recordings/{recording_id}/stop")).status_code == 202
    await scripted.wait_for("stop")
    return stack, room_id, recording_id


def signed_store_headers(room_id: str, boundary: str) -> dict[str, str]:
    return signing.signed_headers(SECRET, room_id.encode()) | {
        "Content-Type": f"multipart/form-data; boundary={boundary}"
    }


def error_of(response: httpx.Response) -> tuple[int, object]:
    """The status and the error code, in either of Talk's shapes (`{"error": code}`, or the recording-server
    endpoints' `{"type": "error", "error": {"code", "message"}}`)."""
    error = response.json()["ocs"]["data"].get("error")
    return response.status_code, error["code"] if isinstance(error, dict) else error


async def test_signed_requests_pass_from_an_address_blocked_for_bad_ones(
    stacks: StackFactory, scripted: ScriptedRecordingServer, tmp_path: Path
) -> None:
    stack = await stacks.start(
        recorder=False,
        egress="talk",
        talk_recording_server=f"http://127.0.0.1:{scripted.port}",
        bruteforce_max_failures=2,
    )
    room_id = await create_room(stack.api)
    await join(stack.api, room_id, "Alice")
    backend = f"{OCS}/recording/backend"
    statuses = [(await stack.api.post(backend, content=b"{}", headers=FORGED)).status_code for _ in range(3)]
    assert statuses == [403, 403, 429]  # this address is blocked for bad checksums now

    # ... and the recording server behind the same address still records and uploads.
    recording_id = await start_with_scripted_recorder(stack.api, scripted, room_id)
    assert (await stack.api.post(f"/api/v1/recordings/{recording_id}/stop")).status_code == 202
    await scripted.wait_for("stop")
    assert (await upload(stack.api, SECRET, room_id, "call.mp4", mp4_bytes(tmp_path))).status_code == 200
    assert (await wait_for_status(stack.api, recording_id, {"complete", "failed"}))["status"] == "complete"

    # A forged upload from it is still refused without being read.
    files = {"file": ("call.mp4", b"x" * 1000, "video/mp4")}
    forged = await stack.api.post(f"{OCS}/recording/{room_id}/store", headers=FORGED, files=files)
    assert error_of(forged) == (429, "too_many_requests") and int(forged.headers["Retry-After"]) > 0


async def test_a_replayed_callback_is_refused_by_every_api_process(
    stacks: StackFactory, scripted: ScriptedRecordingServer
) -> None:
    stack = await stacks.start(recorder=False, egress="talk", talk_recording_server=f"http://127.0.0.1:{scripted.port}")
    room_id = await create_room(stack.api)
    await join(stack.api, room_id, "Alice")
    recording_id = await start_with_scripted_recorder(stack.api, scripted, room_id)
    other_api = await stacks.start_api(stack)

    body = json.dumps({"type": "stopped", "stopped": {"token": room_id, "recordingId": recording_id}}).encode()
    headers = signing.signed_headers(SECRET, body) | {"Content-Type": "application/json"}
    first = await other_api.post(f"{OCS}/recording/backend", content=body, headers=headers)
    assert first.status_code == 200, first.text
    replayed = await stack.api.post(f"{OCS}/recording/backend", content=body, headers=headers)
    assert error_of(replayed) == (403, "replay")
    assert error_of(await other_api.post(f"{OCS}/recording/backend", content=body, headers=headers)) == (403, "replay")


async def test_a_replayed_store_authorization_is_refused(
    stacks: StackFactory, scripted: ScriptedRecordingServer, tmp_path: Path
) -> None:
    stack, room_id, recording_id = await waiting_for_file(stacks, scripted)
    headers = signing.signed_headers(SECRET, room_id.encode())
    store = f"{OCS}/recording/{room_id}/store"
    video = mp4_bytes(tmp_path)
    stored = await stack.api.post(
        store, headers=headers, data={"owner": "api-key"}, files={"file": ("call.mp4", video, "video/mp4")}
    )
    assert stored.status_code == 200, stored.text
    other = mp4_bytes(tmp_path, 2.0)
    replayed = await stack.api.post(
        store, headers=headers, data={"owner": "api-key"}, files={"file": ("call.mp4", other, "video/mp4")}
    )
    assert error_of(replayed) == (401, "replay")
    assert replayed.headers["connection"] == "close"
    done = await wait_for_status(stack.api, recording_id, {"complete", "failed"})
    assert (done["status"], done["size"]) == ("complete", len(video))
    assert await stack.store.list_keys("staging/") == []


async def test_a_chunked_upload_over_the_cap_is_refused_and_nothing_is_staged(
    stacks: StackFactory, scripted: ScriptedRecordingServer
) -> None:
    cap = 2 * 2**20
    stack, room_id, recording_id = await waiting_for_file(stacks, scripted, max_upload_bytes=cap)
    boundary = "callrec-boundary"
    pre, post = multipart(boundary, {"owner": "api-key", "recordingId": recording_id}, "call.mp4")
    headers = signed_store_headers(room_id, boundary)
    # httpx sends a generator without Content-Length: Transfer-Encoding chunked
    response = await stack.api.post(
        f"{OCS}/recording/{room_id}/store", content=upload_body(pre, 4 * cap, post), headers=headers
    )
    assert error_of(response) == (400, "size")
    assert "content-length" not in response.request.headers
    assert await stack.store.list_keys("staging/") == []
    for _ in range(100):  # the owner is told right after the answer
        notifications = (await stack.api.get("/api/v1/notifications", params={"roomId": room_id})).json()
        if "record_file_store_fail" in [n["subject"] for n in notifications["notifications"]]:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"the owner was not told: {notifications}")


async def test_form_fields_beyond_the_protocol_are_skipped_and_bounded(
    stacks: StackFactory, scripted: ScriptedRecordingServer, tmp_path: Path
) -> None:
    stack, room_id, recording_id = await waiting_for_file(stacks, scripted)
    store = f"{OCS}/recording/{room_id}/store"
    video = mp4_bytes(tmp_path)
    files = {"file": ("call.mp4", video, "video/mp4")}

    many = {f"extra{i}": "x" for i in range(20)} | {"owner": "api-key"}
    too_many = await stack.api.post(
        store, headers=signing.signed_headers(SECRET, room_id.encode()), data=many, files=files
    )
    assert error_of(too_many) == (400, "invalid_file")
    huge_owner = await upload(stack.api, SECRET, room_id, "call.mp4", video, owner="a" * 100_000)
    assert error_of(huge_owner) == (400, "invalid_file")

    # A field the protocol does not define is skipped unread, however large: the upload is stored.
    data = {"owner": "api-key", "comment": "x" * 500_000}
    stored = await stack.api.post(
        store, headers=signing.signed_headers(SECRET, room_id.encode()), data=data, files=files
    )
    assert stored.status_code == 200, stored.text
    assert (await wait_for_status(stack.api, recording_id, {"complete", "failed"}))["status"] == "complete"
    assert await stack.store.list_keys("staging/") == []


async def test_a_refused_upload_is_answered_while_the_client_still_sends(
    stacks: StackFactory, scripted: ScriptedRecordingServer
) -> None:
    stack, room_id, recording_id = await waiting_for_file(stacks, scripted)
    port = stack.settings.api_port
    boundary = "callrec-boundary"
    pre, post = multipart(boundary, {"owner": "mallory", "recordingId": recording_id}, "call.mp4")
    # 64 MiB at 64 KiB every 10 ms would take over 10 s to send: the answer comes long before.
    slow = upload_body(pre, 64 * 2**20, post, delay_s=0.01)
    answer = await raw_post(port, f"{OCS}/recording/{room_id}/store", signed_store_headers(room_id, boundary), slow)
    assert answer.status == 400 and json.loads(answer.body)["ocs"]["data"] == {"error": "owner_participant"}
    assert not answer.finished_sending and answer.sent < 8 * 2**20
    assert answer.headers["connection"] == "close"

    # A client that reads only once it has sent everything (httpx does) still gets the answer, not a reset,
    # when the rest of its body is not much larger than this (the API drains a little before it closes).
    async def fast() -> AsyncIterator[bytes]:
        async for piece in upload_body(pre, 8 * 2**20, post):
            yield piece

    headers = signed_store_headers(room_id, boundary)
    response = await stack.api.post(f"{OCS}/recording/{room_id}/store", content=fast(), headers=headers)
    assert error_of(response) == (400, "owner_participant")
    assert await stack.store.list_keys("staging/") == []


async def test_a_stalled_upload_times_out_and_uploads_beyond_the_cap_wait(
    stacks: StackFactory, scripted: ScriptedRecordingServer
) -> None:
    stack, room_id, recording_id = await waiting_for_file(
        stacks, scripted, upload_idle_timeout_s=2.0, max_concurrent_uploads=1
    )
    port = stack.settings.api_port
    boundary = "callrec-boundary"
    pre, post = multipart(boundary, {"owner": "api-key", "recordingId": recording_id}, "call.mp4")
    stalled = asyncio.Event()

    async def stalls() -> AsyncIterator[bytes]:
        yield pre
        stalled.set()
        await asyncio.sleep(3600)
        yield post

    store = f"{OCS}/recording/{room_id}/store"
    first = asyncio.create_task(raw_post(port, store, signed_store_headers(room_id, boundary), stalls()))
    await stalled.wait()
    await asyncio.sleep(0.2)  # the first upload holds the only slot now
    busy = await stack.api.post(
        store, headers=signing.signed_headers(SECRET, room_id.encode()), files={"file": ("c.mp4", b"x", "video/mp4")}
    )
    assert error_of(busy) == (503, "busy") and int(busy.headers["Retry-After"]) > 0
    # A loaded recorder sends its body a moment after its headers and reads once it has sent it all: it gets its
    # 503 and a clean close. (Answered before the body came, the connection closed with the body still arriving
    # and was reset: 18 of 200 uploads in the lifecycle bench lost their answer so.)
    late = await late_body_post(port, store, signing.signed_headers(SECRET, room_id.encode()), b"x" * 20_000)
    assert late.startswith(b"HTTP/1.1 503") and b'"busy"' in late
    answer = await first
    assert answer.status == 408 and json.loads(answer.body)["ocs"]["data"] == {"error": "timeout"}
    assert await stack.store.list_keys("staging/") == []


async def late_body_post(port: int, path: str, headers: dict[str, str], body: bytes) -> bytes:
    """POSTs `body` in two parts, 0.2 s apart, after the request's head, then reads the answer to its end
    (ConnectionResetError: the connection was reset instead)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
    await writer.drain()
    for piece in (body[: len(body) // 2], body[len(body) // 2 :]):  # as a client writes a multipart body: in parts
        await asyncio.sleep(0.2)
        writer.write(piece)
        await writer.drain()
    await asyncio.sleep(0.1)  # the body is there before the answer is read
    try:
        return await asyncio.wait_for(reader.read(), 10)  # to the end: the answer says `Connection: close`
    finally:
        writer.close()


async def test_malformed_multipart_bodies_are_refused_and_nothing_is_staged(
    stacks: StackFactory, scripted: ScriptedRecordingServer, tmp_path: Path
) -> None:
    stack, room_id, recording_id = await waiting_for_file(stacks, scripted)
    store = f"{OCS}/recording/{room_id}/store"
    boundary = "callrec-boundary"
    video = mp4_bytes(tmp_path)
    pre, post = multipart(boundary, {"owner": "api-key", "recordingId": recording_id}, "call.mp4")
    long_header = pre.replace(b"Content-Type: video/mp4", b"X-Padding: " + b"p" * 40_000)
    malformed = {
        "no closing boundary": pre + video,
        "a truncated closing boundary": pre + video + post[:-6],
        "a part's headers too long": long_header + video + post,
        "a header line without a colon": pre.replace(b"Content-Type: video/mp4", b"garbage") + video + post,
        "no boundary at all": b"just bytes" * 1000,
    }
    for what, content in malformed.items():
        response = await stack.api.post(store, headers=signed_store_headers(room_id, boundary), content=content)
        assert error_of(response) == (400, "invalid_file"), what
        assert await stack.store.list_keys("staging/") == [], what

    # The same file in a well-formed body, sent in pieces that split the closing boundary, is stored.
    whole = pre + video + post
    cut = len(whole) - len(post) + 3

    async def pieces() -> AsyncIterator[bytes]:
        for piece in (whole[:100], whole[100:cut], whole[cut:]):
            yield piece

    stored = await stack.api.post(store, headers=signed_store_headers(room_id, boundary), content=pieces())
    assert stored.status_code == 200, stored.text
    done = await wait_for_status(stack.api, recording_id, {"complete", "failed"})
    assert (done["status"], done["size"]) == ("complete", len(video))
