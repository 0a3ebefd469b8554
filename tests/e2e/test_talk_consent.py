"""Talk's recording consent and capabilities: who may join a call that is recorded, and what clients are told."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import httpx

from tests.conftest import StackFactory
from tests.helpers import OCS, create_room
from tests.talk_server import OCS_HEADERS
from tests.test_access_helpers import member_client

OCS_V4 = "/ocs/v2.php/apps/spreed/api/v4"


async def consent_log(data_dir: Path, room_id: str) -> tuple[int | None, list[dict[str, object]]]:
    """`callrec consent list --room R --json`, as an administrator runs it: its exit status and the rows."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callrec.cli", "consent", "list", "--room", room_id, "--json",
        env=os.environ | {"CALLREC_DATA_DIR": str(data_dir)}, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await process.communicate()
    return process.returncode, [json.loads(line) for line in out.decode().splitlines()]


async def test_consent_is_asked_when_joining_and_checked_before_recording(stacks: StackFactory) -> None:
    stack = await stacks.start(recorder=False, recording_consent=2)
    api = stack.api
    async with httpx.AsyncClient(base_url=str(api.base_url)) as anonymous:
        capabilities = (await anonymous.get("/ocs/v2.php/cloud/capabilities", headers=OCS_HEADERS)).json()
    spreed = capabilities["ocs"]["data"]["capabilities"]["spreed"]
    assert {"recording-v1", "recording-consent"} <= set(spreed["features"])
    assert spreed["config"]["call"]["recording"] is True and spreed["config"]["call"]["recording-consent"] == 2

    room_id = await create_room(api)
    moderator = await member_client(api, room_id, "moderator")
    speaker = await member_client(api, room_id, "speaker")
    consent_url, call_url = f"{OCS_V4}/room/{room_id}/recording-consent", f"{OCS_V4}/call/{room_id}"
    assert (await speaker.get(f"{OCS_V4}/room/{room_id}")).json()["ocs"]["data"]["recordingConsent"] == 0
    assert (await speaker.post(call_url, headers=OCS_HEADERS)).status_code == 200  # not asked yet

    on = await moderator.put(consent_url, data={"recordingConsent": "1"}, headers=OCS_HEADERS)
    assert (on.status_code, on.json()["ocs"]["data"]) == (400, {"error": "call"})  # not while a call runs
    assert (await speaker.delete(call_url, headers=OCS_HEADERS)).status_code == 200  # the last one: the call ends
    bad = await moderator.put(consent_url, data={"recordingConsent": "2"}, headers=OCS_HEADERS)
    assert (bad.status_code, bad.json()["ocs"]["data"]) == (400, {"error": "value"})
    refused = await speaker.put(consent_url, data={"recordingConsent": "1"}, headers=OCS_HEADERS)
    assert (refused.status_code, refused.json()["ocs"]["data"]) == (403, [])
    on = await moderator.put(consent_url, data={"recordingConsent": "1"}, headers=OCS_HEADERS)
    assert on.status_code == 200 and on.json()["ocs"]["data"]["recordingConsent"] == 1
    assert (await api.get(f"/api/v1/rooms/{room_id}")).json()["recordingConsent"] == 1

    without = await speaker.post(call_url, headers=OCS_HEADERS)
    assert (without.status_code, without.json()["ocs"]["data"]) == (400, {"error": "consent"})
    assert (await speaker.post(call_url, json={"recordingConsent": True}, headers=OCS_HEADERS)).status_code == 200
    status, logged = await consent_log(stack.settings.data_dir, room_id)
    assert status == 0 and [(row["roomId"], row["actorType"]) for row in logged] == [(room_id, "users")]
    speaker_id = logged[0]["actorId"]
    call = (await api.get(f"/api/v1/rooms/{room_id}/call")).json()
    assert [p["id"] for p in call["participants"]] == [speaker_id] and logged[0]["callStarted"] == call["startedDate"]

    # someone in the call who did not consent (reported by the app): neither door records
    participants = call["participants"] + [{"id": "bob", "name": "Bob"}]
    assert (await api.put(f"/api/v1/rooms/{room_id}/call", json={"participants": participants})).status_code == 200
    meet = await api.post("/api/v1/recordings", json={"roomId": room_id})
    assert meet.status_code == 409 and "Bob" in meet.json()["message"], meet.text
    talk = await moderator.post(f"{OCS}/recording/{room_id}", data={"status": "1"}, headers=OCS_HEADERS)
    assert (talk.status_code, talk.json()["ocs"]["data"]) == (400, {"error": "consent"})

    deleted = await api.delete(f"/api/v1/rooms/{room_id}", params={"withMeeting": "force"})
    assert deleted.status_code == 200, deleted.text
    assert await consent_log(stack.settings.data_dir, room_id) == (2, [])  # no such room: its log went with it
