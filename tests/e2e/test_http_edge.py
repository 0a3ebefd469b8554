"""HTTP at its edges, against the real API on loopback: framing, security headers, CORS, and hostile input.

Each case here once answered wrongly: a request with both Content-Length and Transfer-Encoding was served
(the framing a proxy and the API disagree on), responses carried no `nosniff`, browsers could not call the API,
and deeply nested JSON or a 5000-digit `Range` gave a 500.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.conftest import API_KEY, StackFactory
from tests.helpers import OCS, create_room, join, record

ALLOWED = "https://app.example.com"
DEEP_JSON = b"[" * 10_000 + b"]" * 10_000
SECURITY = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer"}


async def exchange(port: int, request: bytes) -> bytes:
    """Everything the server sends back before it closes the connection (fails if it keeps it open)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


def has_security_headers(response: httpx.Response) -> bool:
    return all(response.headers.get(name) == value for name, value in SECURITY.items())


@pytest.mark.parametrize("server", ["granian", "hypercorn"])
async def test_content_length_with_transfer_encoding_never_lets_a_smuggled_request_through(
    stacks: StackFactory, server: str
) -> None:
    """hypercorn hands the app both headers and the guard refuses the request; granian (hyper) frames it by
    Transfer-Encoding and drops Content-Length, as RFC 9112 6.3 says, and closes the connection after its answer.
    Either way the request smuggled behind the body is never answered."""
    stack = await stacks.start(recorder=False, http_server=server)
    room_id = await create_room(stack.api, "Framing")
    before = (await stack.api.get("/api/v1/rooms")).json()["rooms"]
    smuggled = b"GET /api/v1/rooms HTTP/1.1\r\nHost: x\r\nX-API-KEY: " + API_KEY.encode() + b"\r\n\r\n"
    body = b'{"roomName": "Smuggled"}'
    chunked = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    request = (
        b"POST /api/v1/rooms HTTP/1.1\r\nHost: x\r\nX-API-KEY: " + API_KEY.encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunked
        + smuggled
    )
    answer = await exchange(stack.settings.api_port, request)
    assert answer.count(b"HTTP/1.1 ") == 1, answer  # closed: the smuggled request is never answered
    assert b"x-content-type-options: nosniff" in answer.lower(), answer
    if server == "hypercorn":
        assert answer.startswith(b"HTTP/1.1 400"), answer
        assert b"Content-Length or Transfer-Encoding, not both" in answer, answer
        assert (await stack.api.get("/api/v1/rooms")).json()["rooms"] == before  # nothing was created
        store = f"{OCS}/recording/{room_id}/store".encode()
        answer = await exchange(stack.settings.api_port, request.replace(b"/api/v1/rooms", store, 1))
        assert answer.startswith(b"HTTP/1.1 400") and answer.count(b"HTTP/1.1 ") == 1, answer
    else:
        assert answer.startswith(b"HTTP/1.1 201"), answer  # the chunked body, not the first 4 bytes of it
        assert b"connection: close" in answer.lower(), answer

    # Either header alone is fine.
    for framing in (
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body,
        b"Transfer-Encoding: chunked\r\n\r\n" + chunked,
    ):
        request = (
            b"POST /api/v1/rooms HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"X-API-KEY: " + API_KEY.encode() + b"\r\nContent-Type: application/json\r\n" + framing
        )
        answer = await exchange(stack.settings.api_port, request)
        assert answer.startswith(b"HTTP/1.1 201"), answer


async def test_media_and_downloads_are_nosniff_and_ranges_with_odd_numbers_are_not_errors(
    stacks: StackFactory,
) -> None:
    stack = await stacks.start()
    api = stack.api
    room_id = await create_room(api, "Headers")
    await join(api, room_id, "Alice")
    recording_id = (await record(api, room_id, seconds=0.5))["recordingId"]
    media = f"/api/v1/recordings/{recording_id}/media"
    size = int((await api.get(media)).headers["content-length"])

    for response in (
        await api.get(media),
        await api.get(media, headers={"Range": "bytes=0-9"}),
        await api.get(f"/api/v1/recordings/{recording_id}/download"),
        await api.get("/api/v1/recordings/download", params={"recordingIds": recording_id}),
        await api.get("/api/v1/rooms", headers={"X-API-KEY": ""}),  # an error answer too
        await api.post(f"{OCS}/recording/{room_id}/store"),  # and the upload's own answers
    ):
        assert has_security_headers(response), (response.request.url, response.status_code, response.headers)

    # A position of 5000 digits is beyond any file: as a start unsatisfiable, as an end the last byte.
    huge = "9" * 5000
    beyond = await api.get(media, headers={"Range": f"bytes={huge}-"})
    assert beyond.status_code == 416, beyond.text
    assert "range not satisfiable" in beyond.json()["message"] and beyond.headers["content-range"] == f"bytes */{size}"
    to_the_end = await api.get(media, headers={"Range": f"bytes=0-{huge}"})
    assert to_the_end.status_code == 206 and to_the_end.headers["content-range"] == f"bytes 0-{size - 1}/{size}"
    # Suffix ranges are refused as OpenVidu Meet refuses them (422), and so are digits of other scripts (not
    # digits in HTTP).
    for odd in ("bytes=-99999999999999999999999", "bytes=\u0663-", "bytes=0-\u00b2", "bytes=\uff10-1"):
        refused = await api.get(media, headers={b"Range": odd.encode()})
        assert refused.status_code == 422, (odd, refused.status_code)
        assert refused.json()["details"][0]["field"] == "headers.range"


async def test_cors_preflight_is_answered_before_auth_for_allowed_origins_only(stacks: StackFactory) -> None:
    stack = await stacks.start(recorder=False, cors_origins=[ALLOWED, "http://localhost:3000"])
    port = stack.settings.api_port
    preflight = {
        "Origin": ALLOWED,
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "x-api-key, range",
    }
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as browser:  # no credentials
        answer = await browser.options("/api/v1/recordings/anything/media", headers=preflight)
        assert answer.status_code == 204, answer.text
        assert "content-type" not in answer.headers and "content-length" not in answer.headers  # no content
        assert answer.headers["access-control-allow-origin"] == ALLOWED
        allowed_headers = {h.strip().lower() for h in answer.headers["access-control-allow-headers"].split(",")}
        assert {"x-api-key", "authorization", "range", "content-type"} <= allowed_headers
        assert "DELETE" in answer.headers["access-control-allow-methods"]

        refused = await browser.options("/api/v1/rooms", headers=preflight | {"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in refused.headers and refused.status_code != 204

        rooms = await browser.get("/api/v1/rooms", headers={"Origin": ALLOWED, "X-API-KEY": API_KEY})
        assert rooms.status_code == 200 and rooms.headers["access-control-allow-origin"] == ALLOWED
        exposed = {h.strip() for h in rooms.headers["access-control-expose-headers"].split(",")}
        assert {"Content-Range", "Content-Length", "Accept-Ranges", "Location", "X-Skipped-Recordings"} <= exposed
        assert "Origin" in rooms.headers["vary"]
        # A refused answer still tells the browser's app why (its body is readable).
        anonymous = await browser.get("/api/v1/rooms", headers={"Origin": ALLOWED})
        assert anonymous.status_code == 401 and anonymous.headers["access-control-allow-origin"] == ALLOWED
        other = await browser.get("/api/v1/rooms", headers={"Origin": "https://evil.example", "X-API-KEY": API_KEY})
        assert other.status_code == 200 and "access-control-allow-origin" not in other.headers

    # Without CALLREC_CORS_ORIGINS (the default) no origin gets CORS headers, and a preflight is not answered.
    plain = await stacks.start(recorder=False)
    answer = await plain.api.options("/api/v1/rooms", headers=preflight)
    assert answer.status_code != 204 and "access-control-allow-origin" not in answer.headers
    rooms = await plain.api.get("/api/v1/rooms", headers={"Origin": ALLOWED})
    assert rooms.status_code == 200 and "access-control-allow-origin" not in rooms.headers


@pytest.mark.parametrize("server", ["granian", "hypercorn"])
async def test_an_answer_before_the_body_is_read_closes_the_connection(stacks: StackFactory, server: str) -> None:
    """A 2 MB body the API refuses unread (no credentials): the answer says `Connection: close`, so the unread
    rest is never taken for the next request, and the same client's next request is answered."""
    stack = await stacks.start(recorder=False, http_server=server)
    async with httpx.AsyncClient(base_url=str(stack.api.base_url)) as client:  # no API key
        refused = await client.post("/api/v1/rooms", content=b"x" * 2_000_000, headers={"Content-Type": "text/plain"})
        assert refused.status_code == 401
        assert refused.headers["connection"] == "close"
        again = await client.get("/health")
        assert again.status_code in (200, 503)
        read = await stack.api.post("/api/v1/rooms", json={"roomName": "Kept alive"})
        assert read.status_code == 201 and "connection" not in read.headers  # a body read in full keeps it open


@pytest.mark.parametrize("server", ["granian", "hypercorn"])
async def test_a_broken_chunked_body_is_a_bad_request(stacks: StackFactory, server: str) -> None:
    """granian reports broken chunk framing to the app as the client leaving, and Quart then answers nothing, which
    granian made a 500; hypercorn answers 400 itself. Either way the client learns its body was at fault."""
    stack = await stacks.start(recorder=False, http_server=server)
    room_id = await create_room(stack.api, "Chunks")
    before = (await stack.api.get("/api/v1/rooms")).json()["rooms"]
    head = b"Host: x\r\nX-API-KEY: " + API_KEY.encode() + b"\r\nContent-Type: application/json\r\n"
    for framing in (b"zz\r\n{}\r\n0\r\n\r\n", b"2\r\n{}XX0\r\n\r\n"):  # a size that is no number; no CRLF
        for line in (b"POST /api/v1/rooms", f"PUT /api/v1/rooms/{room_id}/call".encode()):
            request = line + b" HTTP/1.1\r\n" + head + b"Transfer-Encoding: chunked\r\n\r\n" + framing
            answer = await exchange(stack.settings.api_port, request)
            assert answer.startswith(b"HTTP/1.1 400"), answer
            if server == "granian":
                assert b'"message": "Malformed body: it ended before its declared length' in answer, answer
                assert b"connection: close" in answer.lower(), answer
    assert (await stack.api.get("/api/v1/rooms")).json()["rooms"] == before  # nothing was created
    # A client that leaves in the middle of its body: nothing to answer, and the API goes on serving.
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.settings.api_port)
    writer.write(b"POST /api/v1/rooms HTTP/1.1\r\n" + head + b"Content-Length: 100\r\n\r\n{")
    await writer.drain()
    writer.close()
    assert (await stack.api.post("/api/v1/rooms", json={"roomName": "After"})).status_code == 201


async def test_deeply_nested_or_undecodable_json_is_a_bad_request(stacks: StackFactory) -> None:
    stack = await stacks.start(recorder=False)
    api = stack.api
    room_id = await create_room(api, "Nested")
    json_type = {"Content-Type": "application/json"}
    for method, path in (("POST", "/api/v1/rooms"), ("PUT", f"/api/v1/rooms/{room_id}/call")):
        response = await api.request(method, path, content=DEEP_JSON, headers=json_type)
        assert response.status_code == 400, response.text
        assert response.json() == {"error": "Bad Request", "message": "Malformed body: JSON nested too deeply"}
    nested_value = b'{"roomName": ' + DEEP_JSON + b"}"
    assert (await api.post("/api/v1/rooms", content=nested_value, headers=json_type)).status_code == 400
    # Talk's endpoints read JSON through Quart: the same body is Talk's error, not a crash.
    talk = await api.post(f"{OCS}/recording/{room_id}", content=b'{"status": ' + DEEP_JSON + b"}", headers=json_type)
    assert talk.status_code == 400, talk.text
    # Bytes that are not UTF-8 (nor UTF-16 or 32) with a JSON content type: Talk's error for the missing parameter.
    alice = {"participants": [{"id": "alice", "name": "Alice"}]}
    assert (await api.put(f"/api/v1/rooms/{room_id}/call", json=alice)).status_code == 200
    garbage = b"\xff\xfe\xfa"
    for method, path in (
        ("POST", f"{OCS}/recording/{room_id}"),
        ("POST", f"{OCS}/recording/{room_id}/share-chat"),
        ("DELETE", f"{OCS}/recording/{room_id}/notification"),
        ("PUT", f"/ocs/v2.php/apps/spreed/api/v4/room/{room_id}/recording-consent"),
    ):
        answer = await api.request(method, path, content=garbage, headers=json_type | {"OCS-APIRequest": "true"})
        assert answer.status_code == 400, (path, answer.status_code, answer.text)
        assert answer.json()["ocs"]["meta"]["status"] == "failure", answer.text
    refused = await api.post("/api/v1/rooms", content=garbage, headers=json_type)
    assert refused.json() == {"error": "Bad Request", "message": "Malformed body"}, refused.text
    assert (await api.get(f"/api/v1/rooms/{room_id}")).status_code == 200  # and the API goes on serving


async def test_non_ascii_checksums_are_refused_not_crashed(stacks: StackFactory) -> None:
    stack = await stacks.start(recorder=False)
    room_id = await create_room(stack.api, "Checksums")
    signed = {"Talk-Recording-Random": "r" * 32, "Talk-Recording-Checksum": "\u00e9" * 64}
    for path in (f"{OCS}/recording/backend", f"{OCS}/recording/{room_id}/store"):
        headers = {name.encode(): value.encode() for name, value in signed.items()}
        response = await stack.api.post(path, content=b"{}", headers=headers)
        assert 400 <= response.status_code < 500, (path, response.status_code, response.text)
        assert response.json()["ocs"]["data"]["error"]["code"] == "invalid_request", response.text  # Talk's
