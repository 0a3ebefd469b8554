"""The room's recording status and the stop as Talk moves them, against a stand-in Talk recording server.

Talk (`RecordingController`, `RecordingService`, `BackendNotifier`) sets 3/4 once the recording server took a start,
then follows the recording server's callbacks: `started` 1/2, `stopped` 0, `failed` 5 (also with nothing recording).
A stop goes out whenever the status is not 0, naming who stopped it, and again when asked again; the call's end
sends `"stop": []`. The durable recording keeps its richer status beside it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.conftest import SECRET, StackFactory
from tests.helpers import OCS, backend_callback, create_room, wait_for_status
from tests.talk_server import (
    OCS_HEADERS,
    TalkRecordingServer,
    room_status,
    talk_server,
    talk_stack,
    talk_start,
)
from tests.test_access_helpers import member_client

__all__ = ["talk_server"]  # the fixture
OCS_V4 = "/ocs/v2.php/apps/spreed/api/v4"


async def chat(api: httpx.AsyncClient, room_id: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = (await api.get(f"/api/v1/rooms/{room_id}/chat")).json()["messages"]
    return messages


async def until_requests(server: TalkRecordingServer, kind: str, count: int) -> list[dict[str, Any]]:
    for _ in range(200):
        if len(found := server.of_type(kind)) >= count:
            return [r.body for r in found]
        await asyncio.sleep(0.025)
    raise AssertionError(f"{len(server.of_type(kind))} {kind} requests, not {count}")


async def test_stop_names_its_actor_is_sent_again_and_only_stopped_moves_the_status(
    stacks: StackFactory, talk_server: TalkRecordingServer
) -> None:
    api, room_id, _ = await talk_stack(stacks, talk_server)
    recording = await talk_start(api, talk_server, room_id)  # 3 once accepted, 1 on `started`
    talk = f"{OCS}/recording/{room_id}"

    assert (await api.delete(talk, headers=OCS_HEADERS)).json()["ocs"]["data"] is None
    assert (await api.delete(talk, headers=OCS_HEADERS)).status_code == 200  # before the server confirmed
    stops = await until_requests(talk_server, "stop", 2)
    assert stops == [{"type": "stop", "stop": {"actor": {"type": "users", "id": "api-key"}}}] * 2
    assert await room_status(api, room_id) == 1  # Talk changes it on the server's `stopped`, not on the click
    assert [m["systemMessage"] for m in await chat(api, room_id)] == ["recording_started"]

    stopped = await backend_callback(
        api, SECRET, "stopped", {"token": room_id, "actor": {"type": "users", "id": "api-key"}}
    )
    assert (stopped.status_code, stopped.json()["ocs"]["data"]) == (200, None)
    assert await room_status(api, room_id) == 0  # at once, while the file is still to come
    assert (await api.get(f"/api/v1/recordings/{recording['recordingId']}")).json()["status"] == "ending"
    assert [m["systemMessage"] for m in await chat(api, room_id)] == ["recording_started", "recording_stopped"]
    again = await api.delete(talk, headers=OCS_HEADERS)  # status 0: nothing to send
    assert again.status_code == 200 and len(talk_server.of_type("stop")) == 2


async def test_a_refused_start_changes_nothing_and_callbacks_set_the_status_whatever_it_was(
    stacks: StackFactory, talk_server: TalkRecordingServer
) -> None:
    api, room_id, _ = await talk_stack(stacks, talk_server)
    talk = f"{OCS}/recording/{room_id}"

    talk_server.start_answer = 400
    refused = await api.post(talk, data={"status": "1"}, headers=OCS_HEADERS)
    assert (refused.status_code, refused.json()["ocs"]["data"]) == (500, [])
    assert await room_status(api, room_id) == 0  # as it was: the recording server did not take it
    talk_server.start_answer = 200
    recordings = f"/api/v1/recordings?roomId={room_id}"
    [refused_recording] = [r["recordingId"] for r in (await api.get(recordings)).json()["recordings"]]

    # `stopped` while starting: 0, and the recording ends without anything recorded
    assert (await api.post(talk, data={"status": "2"}, headers=OCS_HEADERS)).status_code == 200
    assert await room_status(api, room_id) == 4
    assert (await backend_callback(api, SECRET, "stopped", {"token": room_id})).status_code == 200
    assert await room_status(api, room_id) == 0
    [second] = [r["recordingId"] for r in (await api.get(recordings)).json()["recordings"] if r["recordingId"] !=
                refused_recording]  # fmt: skip
    aborted = await wait_for_status(api, second, {"aborted", "failed", "complete"})
    assert (aborted["status"], aborted["error"]) == ("aborted", "nothing_recorded"), aborted

    # `failed` with nothing recording: accepted, 5 (no message: nothing was recording)
    failed = await backend_callback(api, SECRET, "failed", {"token": room_id})
    assert (failed.status_code, await room_status(api, room_id)) == (200, 5)
    late_start = await backend_callback(api, SECRET, "started", {"token": room_id, "status": 1})
    assert late_start.status_code == 404
    assert late_start.json()["ocs"]["data"]["error"]["code"] == "no_such_room"

    # a start from 5 behaves as from 0; a failure while recording posts `recording_failed` by Talk's fallback actor
    await talk_start(api, talk_server, room_id)
    assert (await backend_callback(api, SECRET, "failed", {"token": room_id})).status_code == 200
    assert await room_status(api, room_id) == 5
    last = (await chat(api, room_id))[-1]
    assert (last["systemMessage"], last["actorType"], last["actorId"]) == (
        "recording_failed",
        "guests",
        "failed-to-get-session",
    )


async def test_talk_answers_access_and_start_checks_in_its_order(
    stacks: StackFactory, talk_server: TalkRecordingServer
) -> None:
    api, room_id, _ = await talk_stack(stacks, talk_server)
    other_room = await create_room(api, "Other")
    talk = f"{OCS}/recording/{room_id}"
    async with httpx.AsyncClient(base_url=str(api.base_url), headers=OCS_HEADERS) as nobody:
        assert (await nobody.post(talk, data={"status": "1"})).status_code == 401
    for caller, path, status in (
        (api, f"{OCS}/recording/no-such-room", 404),
        (await member_client(api, other_room, "moderator"), talk, 404),  # not a participant of this room
        (await member_client(api, room_id, "speaker"), talk, 403),
    ):
        refused = await caller.post(path, data={"status": "1"}, headers=OCS_HEADERS)
        assert (refused.status_code, refused.json()["ocs"]["data"]) == (status, [])

    async def start_error(body: dict[str, str]) -> object:
        answer = await api.post(talk, data=body, headers=OCS_HEADERS)
        assert answer.status_code == 400, answer.text
        return answer.json()["ocs"]["data"]["error"]

    await api.put(f"/api/v1/rooms/{room_id}/config", json={"config": {"recording": {"enabled": False}}})
    assert (await api.delete(f"/api/v1/rooms/{room_id}/call")).status_code == 204
    assert await start_error({"status": "3"}) == "status"  # before anything else
    assert await start_error({"status": "1"}) == "call"  # before `config`
    await api.put(f"/api/v1/rooms/{room_id}/call", json={"participants": [{"id": "alice", "name": "Alice"}]})
    assert await start_error({"status": "1"}) == "config"
    await api.put(f"/api/v1/rooms/{room_id}/config", json={"config": {"recording": {"enabled": True}}})
    await talk_start(api, talk_server, room_id)
    assert (await api.delete(f"/api/v1/rooms/{room_id}/call")).status_code == 204  # the call ends: `"stop": []`
    assert (await until_requests(talk_server, "stop", 1)) == [{"type": "stop", "stop": []}]
    assert await start_error({"status": "1"}) == "recording"  # still 1 until `stopped`: before `call`
    assert (await backend_callback(api, SECRET, "stopped", {"token": room_id})).status_code == 200
    assert [m["systemMessage"] for m in await chat(api, room_id)] == ["recording_started"]  # nobody stopped it

    # the recording server's endpoint answers errors as Talk's does
    bad = await api.post(f"{OCS}/recording/backend", json={"type": "started"}, headers={"Talk-Recording-Random": "x"})
    assert (bad.status_code, bad.json()["ocs"]["data"]) == (
        403,
        {"type": "error", "error": {"code": "invalid_request", "message": "The request could not be authenticated."}},
    )
    unknown = await backend_callback(api, SECRET, "paused", {"token": room_id})
    assert (unknown.status_code, unknown.json()["ocs"]["data"]["error"]["code"]) == (400, "unknown_type")
    no_room = await backend_callback(api, SECRET, "failed", {"token": "no-such-room"})
    assert no_room.status_code == 404
    assert no_room.json()["ocs"]["data"]["error"] == {"code": "no_such_room", "message": "Room not found."}


async def test_the_last_participant_leaving_the_call_stops_the_recording(
    stacks: StackFactory, talk_server: TalkRecordingServer
) -> None:
    api, room_id, _ = await talk_stack(stacks, talk_server)
    assert (await api.delete(f"/api/v1/rooms/{room_id}/call")).status_code == 204  # only Talk joins from here
    alice = await member_client(api, room_id, "moderator")
    bob = await member_client(api, room_id, "speaker")
    for member in (alice, bob):
        joined = await member.post(f"{OCS_V4}/call/{room_id}", data={"flags": "7"}, headers=OCS_HEADERS)
        assert (joined.status_code, joined.json()["ocs"]["data"]) == (200, None)
    await talk_start(api, talk_server, room_id)

    assert (await alice.delete(f"{OCS_V4}/call/{room_id}", headers=OCS_HEADERS)).status_code == 200
    await asyncio.sleep(0.3)
    assert talk_server.of_type("stop") == []  # Bob is still in the call
    assert (await bob.delete(f"{OCS_V4}/call/{room_id}", headers=OCS_HEADERS)).status_code == 200
    assert (await until_requests(talk_server, "stop", 1)) == [{"type": "stop", "stop": []}]
    assert (await api.get(f"/api/v1/rooms/{room_id}/call")).status_code == 404  # the call ended
