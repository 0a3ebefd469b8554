"""The API's side of publishing: minting publish tokens, the WHIP endpoint's own checks, publisher presence.

The recorder's side (WebRTC itself) is in tests/recorder; whole calls recorded from real media in
tests/e2e/test_whip_recording.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from callrec.domain import publish
from callrec.media.testsignals import publisher_tracks
from callrec.media.whip_client import WhipSession, whip_publish
from tests.conftest import PUBLISH_SECRET, SECRET, StackFactory
from tests.helpers import backend_callback, create_room, member_headers

SDP_OFFER = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


def bearer(token: str, content_type: str | None = "application/sdp") -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} | ({"Content-Type": content_type} if content_type else {})


async def test_publish_tokens_name_one_room_and_one_participant(stacks: StackFactory) -> None:
    stack = await stacks.start(recorder=False)
    api = stack.api
    room_a, room_b = await create_room(api, "A"), await create_room(api, "B")

    minted = await api.post(f"/api/v1/rooms/{room_a}/publish-token", json={"participantName": "Alice"})
    assert minted.status_code == 201, minted.text
    answer = minted.json()
    assert answer["whipUrl"] == f"{stack.settings.backend_url}/api/v1/rooms/{room_a}/whip"
    assert answer["expiresAt"] > time.time() * 1000
    publisher = publish.verify(PUBLISH_SECRET, answer["token"], room_a)
    assert (publisher.name, publisher.role, publisher.participant_id) == ("Alice", "speaker", answer["participantId"])

    chosen = await api.post(
        f"/api/v1/rooms/{room_a}/publish-token",
        json={"participantId": "cam-1", "participantName": "Door camera", "role": "moderator"},
    )
    assert chosen.json()["participantId"] == "cam-1"

    # A token for room A never publishes into room B, and the token is checked before anything else.
    into_b = await api.post(f"/api/v1/rooms/{room_b}/whip", content=SDP_OFFER, headers=bearer(answer["token"]))
    assert into_b.status_code == 403 and "another room" in into_b.json()["message"]
    status_b = await api.get(f"/api/v1/rooms/{room_b}/publish-status", headers=bearer(answer["token"], None))
    assert status_b.status_code == 403

    # Bad requests for a token: each with its reason.
    for body, field in (
        ({}, "participantName"),
        ({"participantName": "x", "participantId": "../etc"}, "participantId"),
    ):
        refused = await api.post(f"/api/v1/rooms/{room_a}/publish-token", json=body)
        assert refused.status_code == 422 and field in refused.text
    assert (await api.post("/api/v1/rooms/nope/publish-token", json={"participantName": "x"})).status_code == 404
    anonymous = await stack.api.post(
        f"/api/v1/rooms/{room_a}/publish-token", json={"participantName": "x"}, headers={"X-API-KEY": ""}
    )
    assert anonymous.status_code == 401


async def test_members_publish_as_themselves_into_their_room_only(stacks: StackFactory) -> None:
    stack = await stacks.start(recorder=False)
    room_a, room_b = await create_room(stack.api, "A"), await create_room(stack.api, "B")
    headers = await member_headers(stack.api, room_a, "Bob", role="speaker")
    async with httpx.AsyncClient(base_url=str(stack.api.base_url)) as member:
        mine = await member.post(
            f"/api/v1/rooms/{room_a}/publish-token",
            json={"participantName": "Bob", "participantId": "someone-else", "role": "moderator"},
            headers=headers,
        )
        assert mine.status_code == 201, mine.text
        publisher = publish.verify(PUBLISH_SECRET, mine.json()["token"], room_a)
        assert publisher.participant_id != "someone-else" and publisher.role == "speaker"
        other = await member.post(
            f"/api/v1/rooms/{room_b}/publish-token", json={"participantName": "Bob"}, headers=headers
        )
        assert other.status_code == 403


async def test_the_whip_endpoint_checks_type_size_token_and_room_first(stacks: StackFactory) -> None:
    stack = await stacks.start(recorder=False)
    api = stack.api
    room = await create_room(api)
    token = (await api.post(f"/api/v1/rooms/{room}/publish-token", json={"participantName": "A"})).json()["token"]
    whip = f"/api/v1/rooms/{room}/whip"

    wrong_type = await api.post(whip, content=SDP_OFFER, headers=bearer(token, "application/json"))
    assert wrong_type.status_code == 415 and wrong_type.headers["Accept-Post"] == "application/sdp"
    huge = await api.post(whip, content="a=x\r\n" * 20_000, headers=bearer(token))
    assert huge.status_code == 413
    unauthenticated = await api.post(whip, content=SDP_OFFER, headers={"Content-Type": "application/sdp"})
    assert unauthenticated.status_code == 401 and "Bearer" in unauthenticated.json()["message"]
    forged = publish.mint("another-secret-0123456789abcdef0123456789", publish.verify(PUBLISH_SECRET, token, room))
    assert (await api.post(whip, content=SDP_OFFER, headers=bearer(forged))).status_code == 401
    expired = publish.mint(PUBLISH_SECRET, publish.Publisher(room, "p", "P", "speaker", int(time.time()) - 10))
    old = await api.post(whip, content=SDP_OFFER, headers=bearer(expired))
    assert old.status_code == 401 and "expired" in old.json()["message"]
    # Without a recorder to hand the offer to: a 503 to try again, not a crash.
    unreachable = await api.post(whip, content=SDP_OFFER, headers=bearer(token))
    assert unreachable.status_code == 503 and unreachable.headers["Retry-After"]
    trickle = await api.patch(f"{whip}/some-session", content="a=candidate", headers=bearer(token))
    assert trickle.status_code == 405 and "POST" in trickle.headers["Allow"]
    options = await api.options(whip)
    assert options.status_code == 204 and options.headers["Accept-Post"] == "application/sdp"
    status = await api.get(f"/api/v1/rooms/{room}/publish-status", headers=bearer(token, None))
    assert status.json() == {"recording": False, "status": None}

    assert (await api.delete(f"/api/v1/rooms/{room}?withRecordings=close")).status_code in (200, 202)
    closed = await api.post(whip, content=SDP_OFFER, headers=bearer(token))
    assert closed.status_code == 409 and "closed" in closed.json()["message"]


async def test_publishers_join_and_leave_the_call_through_the_recorder(stacks: StackFactory) -> None:
    stack = await stacks.start(recorder=False)
    api = stack.api
    room = await create_room(api)

    async def presence(participant_id: str, name: str, state: str) -> httpx.Response:
        participant = {"id": participant_id, "name": name, "role": "speaker"}
        return await backend_callback(
            api, SECRET, "publisher", {"token": room, "participant": participant, "state": state}
        )

    assert (await presence("cam-1", "Alice", "joined")).status_code == 200
    assert (await presence("cam-2", "Bob", "joined")).status_code == 200
    assert (await presence("cam-1", "Alice (laptop)", "joined")).status_code == 200  # a replaced session
    call = (await api.get(f"/api/v1/rooms/{room}/call")).json()
    assert [(p["id"], p["name"]) for p in call["participants"]] == [("cam-2", "Bob"), ("cam-1", "Alice (laptop)")]
    assert (await presence("cam-2", "Bob", "left")).status_code == 200
    call = (await api.get(f"/api/v1/rooms/{room}/call")).json()
    assert [p["id"] for p in call["participants"]] == ["cam-1"]

    bad = await backend_callback(api, SECRET, "publisher", {"token": room, "participant": {"name": "x"}, "state": "x"})
    assert bad.status_code == 400
    unsigned = await backend_callback(api, "wrong-secret", "publisher", {"token": room})
    assert unsigned.status_code == 403


async def offer_sdp() -> tuple[RTCPeerConnection, str]:
    """A real publisher's offer (generated camera and microphone), with its candidates."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    for track in publisher_tracks("red", 440.0, width=160, height=90):
        pc.addTransceiver(track, direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


async def in_call(api: httpx.AsyncClient, room: str) -> set[str]:
    call = await api.get(f"/api/v1/rooms/{room}/call")
    return {p["id"] for p in call.json()["participants"]} if call.status_code == 200 else set()


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "did not happen in time"
        await asyncio.sleep(0.2)


async def test_the_offer_goes_through_the_api_and_the_session_ends_with_an_expired_token(stacks: StackFactory) -> None:
    stack = await stacks.start()
    api = stack.api
    room = await create_room(api)
    minted = await api.post(f"/api/v1/rooms/{room}/publish-token", json={"participantName": "A", "participantId": "a"})
    pc, offer = await offer_sdp()
    try:
        answered = await api.post(minted.json()["whipUrl"], content=offer, headers=bearer(minted.json()["token"]))
        assert answered.status_code == 201, answered.text
        assert answered.headers.get_list("Content-Type") == ["application/sdp"]  # one, the SDP's
        assert "a=candidate" in answered.text
        location = answered.headers["Location"]
        assert location.startswith(f"/api/v1/rooms/{room}/whip/")
        await pc.setRemoteDescription(RTCSessionDescription(answered.text, "answer"))
        await eventually(lambda: has(api, room, "a"))

        # Its token expired meanwhile: it still ends its own session (and the publisher leaves the call) ...
        expired = publish.mint(PUBLISH_SECRET, publish.Publisher(room, "a", "A", "speaker", int(time.time()) - 5))
        assert (await api.post(minted.json()["whipUrl"], content=offer, headers=bearer(expired))).status_code == 401
        other = publish.mint(PUBLISH_SECRET, publish.Publisher(room, "b", "B", "speaker", int(time.time()) - 5))
        refused = await api.delete(location, headers=bearer(other, None))
        assert refused.status_code == 403 and "another participant" in refused.json()["message"]
        assert (await api.delete(location, headers=bearer(expired, None))).status_code == 200
        await eventually(lambda: gone(api, room, "a"))
        assert (await api.delete(location, headers=bearer(expired, None))).status_code == 404
        # A session id the recorder never gives (a control character, a query, a fragment) goes nowhere: 404.
        sessions, recorder_id = location.rsplit("/", 1)[0], location.rsplit("/", 1)[-1].split("~")[0]
        for forged in ("x%00", "x%0A", "x%3Fy%3D1", "x%23frag", "x" * 200):
            answer = await api.delete(f"{sessions}/{recorder_id}~{forged}", headers=bearer(expired, None))
            assert answer.status_code == 404, (forged, answer.status_code, answer.text)
            assert answer.json()["message"] == "No such publishing session in this room", answer.text
    finally:
        await pc.close()


async def has(api: httpx.AsyncClient, room: str, participant: str) -> bool:
    return participant in await in_call(api, room)


async def gone(api: httpx.AsyncClient, room: str, participant: str) -> bool:
    return participant not in await in_call(api, room)


async def test_presence_is_a_lease_and_revoking_the_room_ends_its_sessions(stacks: StackFactory) -> None:
    stack = await stacks.start(whip_media_timeout_s=1.5)
    api = stack.api
    room = await create_room(api)
    grant = (await api.post(f"/api/v1/rooms/{room}/publish-token", json={"participantName": "A"})).json()
    video, audio = publisher_tracks("blue", 440.0, width=160, height=90)
    session = await whip_publish(grant["whipUrl"], grant["token"], [video, audio])
    try:
        await eventually(lambda: has(api, room, grant["participantId"]))
        # A conferencing back end's PUT of the call (or a DELETE of it) drops the publisher; it comes back by itself.
        await api.put(f"/api/v1/rooms/{room}/call", json={"participants": [{"id": "zoe", "name": "Zoe"}]})
        assert await in_call(api, room) == {"zoe"}
        await eventually(lambda: has(api, room, grant["participantId"]))
        assert "zoe" in await in_call(api, room)

        # Rotating the room's secrets revokes publish tokens: no new session, and the live one ends.
        assert (await api.post(f"/api/v1/rooms/{room}/secrets/rotate")).status_code == 200
        _, offer = await offer_sdp()
        revoked = await api.post(grant["whipUrl"], content=offer, headers=bearer(grant["token"]))
        assert revoked.status_code == 401 and "revoked" in revoked.json()["message"]
        await eventually(lambda: gone(api, room, grant["participantId"]))
        await eventually(lambda: closed(session))

        # Closing the room ends the sessions of tokens minted after the rotation too.
        fresh = (await api.post(f"/api/v1/rooms/{room}/publish-token", json={"participantName": "B"})).json()
        video, audio = publisher_tracks("green", 550.0, width=160, height=90)
        second = await whip_publish(fresh["whipUrl"], fresh["token"], [video, audio])
        await eventually(lambda: has(api, room, fresh["participantId"]))
        assert (await api.delete(f"/api/v1/rooms/{room}?withRecordings=close")).status_code in (200, 202)
        await eventually(lambda: closed(second))
        await second.close()
    finally:
        await session.close()


async def closed(session: WhipSession) -> bool:
    return session.connection_state in ("closed", "failed")
