"""The Talk side after a recording: notifications, share-to-chat, the room's chat, and uploads that go wrong.

The recording server's part is played over HTTP with real HMAC signatures (tests/recording_server.py);
Talk users are room members with tokens, as a Talk client would hold them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus

from callrec.activities.reconcile import ReconcileActivities, ReconcileInput
from callrec.domain import signing, tokens
from callrec.workflows.recording import RecordingWorkflow
from tests.conftest import SECRET, Stack, StackFactory
from tests.helpers import (
    OCS,
    backend_callback,
    create_room,
    member_headers,
    mp4_bytes,
    room_recording,
    stored_keys,
    upload,
    wait_for_status,
)
from tests.recording_server import ScriptedRecordingServer
from tests.talk_server import until_room_status

OCS_HEADERS = {"OCS-APIRequest": "true", "Accept": "application/json"}


@pytest.fixture
async def people(stacks: StackFactory) -> AsyncIterator[httpx.AsyncClient]:
    """A client without the API key: what a Talk client or another machine uses."""
    async with httpx.AsyncClient(timeout=60) as client:
        yield client


async def talk_room(
    stacks: StackFactory, scripted: ScriptedRecordingServer, *, recording: dict[str, Any] | None = None, **settings: Any
) -> tuple[Stack, str]:
    stack = await stacks.start(
        recorder=False, egress="talk", talk_recording_server=f"http://127.0.0.1:{scripted.port}", **settings
    )
    room_id = await create_room(stack.api, **(recording or {}))
    participants = [
        {"id": "alice", "name": "Alice", "role": "moderator"},
        {"id": "bob", "name": "Bob", "role": "speaker"},
    ]
    response = await stack.api.put(f"/api/v1/rooms/{room_id}/call", json={"participants": participants})
    assert response.status_code == 200, response.text
    return stack, room_id


def url(stack: Stack, path: str) -> str:
    return f"{stack.api.base_url}{path}"


async def talk_start(
    stack: Stack, people: httpx.AsyncClient, room_id: str, who: dict[str, str], status: int = 1
) -> None:
    response = await people.post(
        url(stack, f"{OCS}/recording/{room_id}"), headers=OCS_HEADERS | who, json={"status": status}
    )
    assert response.status_code == 200, response.text


async def record_and_store(
    stack: Stack, people: httpx.AsyncClient, scripted: ScriptedRecordingServer, room_id: str, who: dict[str, str],
    tmp_path: Path,
) -> str:  # fmt: skip
    """Alice starts and stops through Talk's endpoints; the recording server reports and uploads as owner alice."""
    await talk_start(stack, people, room_id, who)
    start: dict[str, Any] = (await scripted.wait_for("start"))["start"]  # type: ignore[assignment]
    recording_id = await room_recording(stack.api, room_id)
    # A member is known by the identity its token was minted with, never by the name it chose.
    assert str(start["owner"]).startswith("member:")
    started = {"token": room_id, "status": 1, "actor": start["actor"]}  # as the recording server echoes it
    assert (await backend_callback(stack.api, SECRET, "started", started)).status_code == 200
    await wait_for_status(stack.api, recording_id, {"active"})
    stopped = await people.delete(url(stack, f"{OCS}/recording/{room_id}"), headers=OCS_HEADERS | who)
    assert stopped.status_code == 200, stopped.text
    stopped_by = (await scripted.wait_for("stop"))["stop"]["actor"]  # type: ignore[index]
    callback = await backend_callback(stack.api, SECRET, "stopped", {"token": room_id, "actor": stopped_by})
    assert callback.status_code == 200
    stored = await upload(stack.api, SECRET, room_id, "Recording.mp4", mp4_bytes(tmp_path), owner="Alice")
    assert stored.status_code == 200, stored.text
    done = await wait_for_status(stack.api, recording_id, {"complete", "failed"})
    assert done["status"] == "complete", done
    return recording_id


async def notifications(stack: Stack, people: httpx.AsyncClient, who: dict[str, str]) -> list[dict[str, Any]]:
    response = await people.get(url(stack, "/api/v1/notifications"), headers=who)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["notifications"]
    return found


async def chat(stack: Stack, room_id: str) -> list[dict[str, Any]]:
    response = await stack.api.get(f"/api/v1/rooms/{room_id}/chat")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["messages"]
    return found


async def wait_for_notification(stack: Stack, people: httpx.AsyncClient, who: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while not (found := await notifications(stack, people, who)):
        assert time.monotonic() < deadline, "no notification arrived"
        await asyncio.sleep(0.2)
    return found[0]


async def test_stored_recording_is_offered_and_shared_to_the_chat_once(
    stacks: StackFactory, scripted: ScriptedRecordingServer, people: httpx.AsyncClient, tmp_path: Path
) -> None:
    stack, room_id = await talk_room(stacks, scripted)
    alice = await member_headers(stack.api, room_id, "Alice")
    bob = await member_headers(stack.api, room_id, "Bob", role="speaker")
    joined = await people.post(
        url(stack, f"/ocs/v2.php/apps/spreed/api/v4/call/{room_id}"), headers=OCS_HEADERS | alice
    )
    assert joined.status_code == 200, joined.text  # Alice is in the call: the chat names her as the call does
    recording_id = await record_and_store(stack, people, scripted, room_id, alice, tmp_path)

    offer = await wait_for_notification(stack, people, alice)
    assert (offer["subject"], offer["roomId"], offer["recordingId"]) == ("record_file_stored", room_id, recording_id)
    filename = (await stack.api.get(f"/api/v1/recordings/{recording_id}")).json()["filename"]
    assert (offer["objectType"], offer["subjectRich"]) == ("recording", "Call recording now available")
    assert offer["message"] == f"The recording for the call in Weekly sync was uploaded to {filename}."
    file = offer["messageRichParameters"]["file"]
    assert offer["messageRichParameters"]["call"] == {"type": "call", "id": room_id, "name": "Weekly sync",
                                                      "call-type": "public"}  # fmt: skip
    assert (file["type"], file["id"], file["name"]) == ("file", str(offer["fileId"]), filename)
    assert [a["label"] for a in offer["actions"]] == ["Share to chat", "Dismiss notification"]
    nextcloud = await people.get(url(stack, "/ocs/v2.php/apps/notifications/api/v2/notifications"), headers=alice)
    [listed] = nextcloud.json()["ocs"]["data"]
    assert (listed["object_type"], listed["object_id"], listed["subject"]) == (
        "recording", room_id, "Call recording now available",
    )  # fmt: skip
    share_link = f"{stack.api.base_url}{OCS}/recording/{room_id}/share-chat"
    assert listed["actions"][0]["link"] == f"{share_link}?fileId={offer['fileId']}&timestamp={offer['timestamp']}"
    assert await notifications(stack, people, bob) == []  # a speaker who did not start it is not told
    assert [n["notificationId"] for n in await notifications(stack, stack.api, {})] == [offer["notificationId"]]

    share = {"timestamp": offer["timestamp"], "fileId": offer["fileId"]}
    path = url(stack, f"{OCS}/recording/{room_id}/share-chat")
    denied = await people.post(path, headers=OCS_HEADERS | bob, json=share)
    assert denied.status_code == 403
    for wrong_file in (offer["fileId"] + 1, 2**70, "x"):
        wrong = await people.post(path, headers=OCS_HEADERS | alice, json=share | {"fileId": wrong_file})
        assert (wrong.status_code, wrong.json()["ocs"]["data"]) == (400, {"error": "file"})
    shared = await people.post(listed["actions"][0]["link"], headers=OCS_HEADERS | alice)  # as a Talk client does
    assert shared.status_code == 200, shared.text
    again = await people.post(path, headers=OCS_HEADERS | alice, json=share)  # asking twice posts once
    assert again.status_code == 200, again.text

    messages = await chat(stack, room_id)
    alice_id = messages[0]["actorId"]
    assert alice_id.startswith("member:")
    assert [(m["systemMessage"], m["actorId"], m["actorDisplayName"]) for m in messages] == [
        ("recording_started", alice_id, "Alice"),
        ("recording_stopped", alice_id, "Alice"),
        ("", alice_id, "Alice"),  # the shared file is a regular message
    ]
    assert [m["message"] for m in messages] == ["{actor} started the video recording",
                                                "{actor} stopped the video recording", "{file}"]  # fmt: skip
    assert messages[0]["messageParameters"]["actor"] == {
        "type": "user", "id": alice_id, "name": "Alice", "mention-id": alice_id,
    }  # fmt: skip
    as_alice = (await people.get(url(stack, f"/api/v1/rooms/{room_id}/chat"), headers=alice)).json()["messages"]
    assert [m["message"] for m in as_alice[:2]] == [
        "You started the video recording",
        "You stopped the video recording",
    ]
    file_message = messages[-1]
    assert file_message["messageType"] == "record-video"
    assert file_message["messageParameters"]["file"]["recordingId"] == recording_id
    assert file_message["messageParameters"]["file"]["mimetype"] == "video/mp4"
    assert await notifications(stack, people, alice) == []  # sharing dismissed it

    # The workflow completed once the file was stored (the offer is the catalog's); sharing again still answers 200
    # without a second message.
    handle = stack.client.get_workflow_handle(recording_id)
    await asyncio.wait_for(handle.result(), 30)
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    again = await people.post(path, headers=OCS_HEADERS | alice, json=share)
    assert again.status_code == 200
    assert len(await chat(stack, room_id)) == 3
    too_far = await stack.api.get(f"/api/v1/rooms/{room_id}/chat", params={"lastKnownMessageId": 10**30})
    assert too_far.status_code == 422
    assert (
        await stack.api.get(f"/api/v1/rooms/{room_id}/chat", params={"lastKnownMessageId": messages[1]["id"]})
    ).json()["messages"] == [file_message]

    # The recording's file deleted: its notifications go with it.
    await people.post(url(stack, f"/ocs/v2.php/apps/spreed/api/v4/call/{room_id}"), headers=OCS_HEADERS | alice)
    assert (await stack.api.delete(f"/api/v1/recordings/{recording_id}")).status_code == 200
    assert await notifications(stack, stack.api, {}) == []


async def test_dismissed_offer_cannot_be_shared_and_the_workflow_ends(
    stacks: StackFactory, scripted: ScriptedRecordingServer, people: httpx.AsyncClient, tmp_path: Path
) -> None:
    stack, room_id = await talk_room(stacks, scripted)
    alice = await member_headers(stack.api, room_id, "Alice")
    bob = await member_headers(stack.api, room_id, "Bob", role="speaker")
    recording_id = await record_and_store(stack, people, scripted, room_id, alice, tmp_path)
    offer = await wait_for_notification(stack, people, alice)

    path = url(stack, f"{OCS}/recording/{room_id}/notification")
    assert (
        await people.request("DELETE", path, headers=OCS_HEADERS | bob, json={"timestamp": offer["timestamp"]})
    ).status_code == 403
    for garbled_timestamp in ("soon", 10**30, -1):
        garbled = await people.request(
            "DELETE", path, headers=OCS_HEADERS | alice, json={"timestamp": garbled_timestamp}
        )
        assert (garbled.status_code, garbled.json()["ocs"]["data"]) == (400, {"error": "timestamp"})
    missing_room = url(stack, f"{OCS}/recording/no-such-room/notification")
    assert (await stack.api.request("DELETE", missing_room, json={"timestamp": 1})).status_code == 404
    dismissed = await people.request(
        "DELETE", path, headers=OCS_HEADERS | alice, json={"timestamp": offer["timestamp"]}
    )
    assert dismissed.status_code == 200, dismissed.text
    assert await notifications(stack, people, alice) == []
    await asyncio.wait_for(stack.client.get_workflow_handle(recording_id).result(), 30)

    share = {"timestamp": offer["timestamp"], "fileId": offer["fileId"]}
    late = await people.post(
        url(stack, f"{OCS}/recording/{room_id}/share-chat"), headers=OCS_HEADERS | alice, json=share
    )
    assert (late.status_code, late.json()["ocs"]["data"]) == (400, {"error": "file"})
    assert [m["systemMessage"] for m in await chat(stack, room_id)] == ["recording_started", "recording_stopped"]


async def test_offer_expires_and_auto_share_needs_no_click(
    stacks: StackFactory, scripted: ScriptedRecordingServer, people: httpx.AsyncClient, tmp_path: Path
) -> None:
    stack, room_id = await talk_room(stacks, scripted, share_offer_expiry_s=1)
    alice = await member_headers(stack.api, room_id, "Alice")
    recording_id = await record_and_store(stack, people, scripted, room_id, alice, tmp_path)
    await asyncio.wait_for(stack.client.get_workflow_handle(recording_id).result(), 30)  # closed once stored
    offer = await wait_for_notification(stack, people, alice)
    reconciler = ReconcileActivities(stack.catalog, stack.store, stack.client, offer_expiry_s=1)
    assert (await reconciler.run(ReconcileInput(min_age_s=120))).expired_offers == 0  # open for 1 s
    await asyncio.sleep(2.1)
    # Past its expiry the offer cannot be taken (the API checks), and reconcile closes it as expired.
    assert (await reconciler.run(ReconcileInput(min_age_s=120))).expired_offers == 1
    assert await notifications(stack, people, alice) == []
    share = {"timestamp": offer["timestamp"], "fileId": offer["fileId"]}
    late = await people.post(
        url(stack, f"{OCS}/recording/{room_id}/share-chat"), headers=OCS_HEADERS | alice, json=share
    )
    assert (late.status_code, late.json()["ocs"]["data"]) == (400, {"error": "file"})
    assert await notifications(stack, people, alice) == []  # expired
    assert "{file}" not in [m["message"] for m in await chat(stack, room_id)]

    changed = await stack.api.put(
        f"/api/v1/rooms/{room_id}/config", json={"config": {"recording": {"autoShareToChat": True}}}
    )
    assert changed.status_code == 200 and changed.json()["recording"]["autoShareToChat"] is True
    scripted.requests.clear()
    second = await record_and_store(stack, people, scripted, room_id, alice, tmp_path)
    await asyncio.wait_for(stack.client.get_workflow_handle(second).result(), 30)
    shared = [m for m in await chat(stack, room_id) if m["message"] == "{file}"]
    assert [m["messageParameters"]["file"]["recordingId"] for m in shared] == [second]
    assert await notifications(stack, people, alice) == []


async def test_failed_recording_tells_its_owner_and_a_new_start_is_allowed(
    stacks: StackFactory, scripted: ScriptedRecordingServer, people: httpx.AsyncClient
) -> None:
    stack, room_id = await talk_room(stacks, scripted)
    alice = await member_headers(stack.api, room_id, "Alice")
    carol = await member_headers(stack.api, room_id, "Carol")  # another moderator
    await talk_start(stack, people, room_id, alice, status=2)
    await scripted.wait_for("start")
    recording_id = await room_recording(stack.api, room_id)
    assert (await backend_callback(stack.api, SECRET, "started", {"token": room_id, "status": 2})).status_code == 200
    await wait_for_status(stack.api, recording_id, {"active"})
    assert (await backend_callback(stack.api, SECRET, "failed", {"token": room_id})).status_code == 200
    await wait_for_status(stack.api, recording_id, {"failed"})

    room = (await stack.api.get(f"/api/v1/rooms/{room_id}")).json()
    assert room["callRecording"] == 5
    workflow = stack.client.get_workflow_handle_for(RecordingWorkflow.run, recording_id)
    assert await workflow.query(RecordingWorkflow.call_recording) == 5
    told = await wait_for_notification(stack, people, alice)
    assert (told["subject"], told["objectType"], told["actions"]) == ("recording_failed", "recording_information", [])
    assert told["message"].startswith("The recording of Weekly sync failed: The recording server reported a failure.")
    assert await notifications(stack, people, carol) == []  # Talk tells the one who started it only
    one = url(stack, f"/ocs/v2.php/apps/notifications/api/v2/notifications/{told['notificationId']}")
    assert (await people.delete(one, headers=OCS_HEADERS | carol)).status_code == 404  # not hers: as if none
    assert (await people.delete(one, headers=OCS_HEADERS | alice)).status_code == 200  # dismissed for its reader
    assert await notifications(stack, people, alice) == []
    assert [m["systemMessage"] for m in await chat(stack, room_id)] == ["audio_recording_started", "recording_failed"]

    await talk_start(stack, people, room_id, alice)  # as from `none`
    assert (await stack.api.get(f"/api/v1/rooms/{room_id}")).json()["callRecording"] == 3


async def test_store_rejects_each_bad_upload_and_keeps_nothing(
    stacks: StackFactory, scripted: ScriptedRecordingServer, people: httpx.AsyncClient, tmp_path: Path
) -> None:
    stack, room_id = await talk_room(stacks, scripted, bruteforce_max_failures=3)
    alice = await member_headers(stack.api, room_id, "Alice")
    await talk_start(stack, people, room_id, alice)
    await scripted.wait_for("start")
    recording_id = await room_recording(stack.api, room_id)
    assert (await backend_callback(stack.api, SECRET, "started", {"token": room_id, "status": 1})).status_code == 200
    await wait_for_status(stack.api, recording_id, {"active"})
    video = mp4_bytes(tmp_path)

    async def error_of(response: httpx.Response) -> tuple[int, object]:
        return response.status_code, response.json()["ocs"]["data"].get("error")

    api = stack.api
    assert await error_of(await upload(api, SECRET, room_id, "r.mp4", video, owner=None)) == (400, "size")
    assert await error_of(await upload(api, SECRET, room_id, "r.mp4", video, owner="mallory")) == (
        400,
        "owner_participant",
    )
    assert await error_of(await upload(api, SECRET, room_id, "r.mp4", video, owner="Bob")) == (400, "owner_permission")
    assert await error_of(await upload(api, SECRET, room_id, "r.mp4", video, owner="")) == (400, "owner_invalid")
    exe = b"MZ\x90\x00\x03" + bytes(4000)
    assert await error_of(await upload(api, SECRET, room_id, "setup.exe", exe, owner="Alice")) == (400, "file_mimetype")
    assert await error_of(await upload(api, SECRET, room_id, "r.exe", video, owner="Alice")) == (400, "file_extension")
    assert await error_of(await upload(api, SECRET, room_id, "r.ogg", video, owner="Alice")) == (400, "file_extension")
    assert await error_of(await upload(api, SECRET, room_id, "r.mp4", b"", owner="Alice")) == (400, "empty_file")
    no_room = await upload(api, SECRET, "no-such-room", "r.mp4", video, owner="Alice")
    assert (no_room.status_code, no_room.json()["ocs"]["data"]) == (404, [])
    assert await stack.store.list_keys("staging/") == []
    assert await stack.store.list_keys("recordings/") == []

    # The upload that lost its owner told Alice.
    failed_upload = await wait_for_notification(stack, people, alice)
    assert (failed_upload["subject"], failed_upload["objectType"]) == (
        "record_file_store_fail",
        "recording_information",
    )
    assert failed_upload["subjectRich"] == "Failed to upload call recording"
    assert failed_upload["message"] == (
        "The recording server failed to upload recording of call Weekly sync. Please reach out to the administration."
    )

    # Bad checksums: 401, and after three of them 429 for this address, while another address goes on.
    forged = {signing.RANDOM_HEADER: "r" * 32, signing.CHECKSUM_HEADER: "0" * 64}
    store = url(stack, f"{OCS}/recording/{room_id}/store")
    files = {"file": ("r.mp4", video, "video/mp4")}
    for _ in range(3):
        bad = await people.post(store, headers=forged, data={"owner": "Alice"}, files=files)
        assert (bad.status_code, bad.json()["ocs"]["data"]["error"]["code"]) == (401, "invalid_request")
    blocked = await people.post(store, headers=forged, data={"owner": "Alice"}, files=files)
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    backend = await people.post(url(stack, f"{OCS}/recording/backend"), content=b"{}", headers=forged)
    assert backend.status_code == 429  # one count for all recording-server endpoints
    signed = await people.post(store, headers=signing.signed_headers(SECRET, room_id.encode()), files=files)
    assert signed.status_code == 400  # a signed request is never throttled: refused for its own fault (no owner)
    async with httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(local_address="127.0.0.2")) as elsewhere:
        other = await elsewhere.post(
            store,
            headers=signing.signed_headers(SECRET, room_id.encode()),
            data={"owner": "Alice"},
            files={"file": ("r.ogg", video, "video/mp4")},
        )
        assert (other.status_code, other.json()["ocs"]["data"]) == (400, {"error": "file_extension"})
    assert await stack.store.list_keys("staging/") == []


async def test_retried_upload_is_stored_once(
    stacks: StackFactory, scripted: ScriptedRecordingServer, people: httpx.AsyncClient, tmp_path: Path
) -> None:
    stack, room_id = await talk_room(stacks, scripted, share_offer_expiry_s=3)
    alice = await member_headers(stack.api, room_id, "Alice")
    recording_id = await record_and_store(stack, people, scripted, room_id, alice, tmp_path)
    video = mp4_bytes(tmp_path)

    # The recording server lost the answer and uploads the same file again: 200, nothing new stored.
    again = await upload(stack.api, SECRET, room_id, "Recording.mp4", video, owner="Alice")
    assert again.status_code == 200, again.text
    assert await stack.store.list_keys("recordings/") == stored_keys(room_id, recording_id)
    # Another file with no recording to take it: stored for its owner as Talk stores it, as a recording of its own;
    # the stored one is never replaced.
    other_video = mp4_bytes(tmp_path, 2.0)
    other = await upload(stack.api, SECRET, room_id, "Other.mp4", other_video, owner="Alice")
    assert other.status_code == 200, other.text
    listed = (await stack.api.get("/api/v1/recordings", params={"roomId": room_id})).json()["recordings"]
    [adopted] = [r for r in listed if r["recordingId"] != recording_id]
    adopted = await wait_for_status(stack.api, adopted["recordingId"], {"complete", "failed"})
    assert adopted["status"] == "complete", adopted
    assert (await stack.api.get(f"/api/v1/recordings/{adopted['recordingId']}/media")).content == other_video
    assert (await stack.api.get(f"/api/v1/recordings/{recording_id}/media")).content == video
    assert await stack.store.list_keys("staging/") == []
    told = [(n["recordingId"], n["user"]) for n in await notifications(stack, stack.api, {})]
    assert (adopted["recordingId"], "Alice") in told  # its owner (the upload's) is told, as of any recording
    await asyncio.wait_for(stack.client.get_workflow_handle(adopted["recordingId"]).result(), 30)


async def test_lobby_and_auto_start(
    stacks: StackFactory, scripted: ScriptedRecordingServer, people: httpx.AsyncClient
) -> None:
    stack = await stacks.start(recorder=False, egress="talk", talk_recording_server=f"http://127.0.0.1:{scripted.port}")
    room_id = await create_room(stack.api, autoStart="when_moderator_joins")
    api = stack.api

    # Speakers alone do not start it; the first moderator to join does, as the recording's owner.
    speaker_only = [{"id": "bob", "name": "Bob", "role": "speaker"}]
    assert (await api.put(f"/api/v1/rooms/{room_id}/call", json={"participants": speaker_only})).status_code == 200
    assert (await api.get(f"/api/v1/rooms/{room_id}")).json()["callRecording"] == 0
    with_moderator = [*speaker_only, {"id": "alice", "name": "Alice", "role": "moderator"}]
    assert (await api.put(f"/api/v1/rooms/{room_id}/call", json={"participants": with_moderator})).status_code == 200
    start = await scripted.wait_for("start")
    assert start["start"]["owner"] == "alice"  # type: ignore[index]
    await until_room_status(api, room_id, 3)  # once the recording server's answer reached the workflow
    assert (await backend_callback(api, SECRET, "started", {"token": room_id, "status": 1})).status_code == 200

    # With the lobby on, a speaker allowed to control recordings gets 412; a moderator does not.
    lobby = await api.put(f"/api/v1/rooms/{room_id}/lobby", json={"enabled": True})
    assert lobby.status_code == 200 and lobby.json() == {"enabled": True}
    assert (await api.get(f"/api/v1/rooms/{room_id}")).json()["lobby"] == {"enabled": True}
    settings = stack.settings
    token = tokens.member_token(
        settings.token_key, room_id, "Bob", "speaker", 60, frozenset({tokens.Permission.CONTROL})
    )
    controlling_speaker = {"X-Room-Member-Token": token}
    stop = url(stack, f"{OCS}/recording/{room_id}")
    assert (await people.delete(stop, headers=OCS_HEADERS | controlling_speaker)).status_code == 412
    alice = await member_headers(api, room_id, "Alice")
    assert (await people.delete(stop, headers=OCS_HEADERS | alice)).status_code == 200
    await scripted.wait_for("stop")
