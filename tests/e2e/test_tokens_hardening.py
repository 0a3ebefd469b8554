"""Tokens and access, hardened: secrets the API demands, revocable member tokens, notifications by identity,
capped `recordingIds`, and 401/403 answers that say what to do."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from callrec.storage.rows import NotificationRow
from tests.conftest import StackFactory
from tests.helpers import OCS, create_room, join, record
from tests.test_access_helpers import client


async def exchange(api: httpx.AsyncClient, room_id: str, secret: str, name: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=str(api.base_url)) as anonymous:
        return await anonymous.post(
            f"/api/v1/rooms/{room_id}/members/token", json={"secret": secret, "participantName": name}
        )


async def member(api: httpx.AsyncClient, room_id: str, role: str, name: str = "Alice") -> httpx.AsyncClient:
    room = (await api.get(f"/api/v1/rooms/{room_id}")).json()
    got = await exchange(api, room_id, room[f"{role}Secret"], name)
    assert got.status_code == 200, got.text
    return client(api, {"X-Room-Member-Token": got.json()["token"]})


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"CALLREC_API_KEY": "short-key", "CALLREC_TOKEN_SECRET": "t" * 40}, "CALLREC_API_KEY"),
        ({"CALLREC_API_KEY": "k" * 40}, "CALLREC_TOKEN_SECRET"),
        ({"CALLREC_API_KEY": "k" * 40, "CALLREC_TOKEN_SECRET": "too-short"}, "CALLREC_TOKEN_SECRET"),
    ],
)
def test_the_api_refuses_to_start_with_weak_secrets(env: dict[str, str], setting: str, tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CALLREC_")}
    # Nothing listens on this Temporal address: the refusal must come before any connection is tried.
    clean |= {"CALLREC_DATA_DIR": str(tmp_path), "CALLREC_TEMPORAL_ADDRESS": "127.0.0.1:9", "CALLREC_API_PORT": "9"}
    done = subprocess.run(
        [sys.executable, "-m", "callrec.cli", "api"], env=clean | env, capture_output=True, text=True, timeout=60
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert setting in lines[0] and "Traceback" not in done.stderr


async def test_rotating_a_rooms_secrets_revokes_its_member_tokens(stacks: StackFactory) -> None:
    stack = await stacks.start(recorder=False)
    api = stack.api
    room_id = await create_room(api)
    before = (await api.get(f"/api/v1/rooms/{room_id}")).json()
    moderator, speaker = await member(api, room_id, "moderator"), await member(api, room_id, "speaker")
    assert (await moderator.get(f"/api/v1/rooms/{room_id}")).status_code == 200

    # Only admins rotate (a member token is no credential of this endpoint: 401, as in Meet).
    assert (await moderator.post(f"/api/v1/rooms/{room_id}/secrets/rotate")).status_code == 401
    user_token = (await api.post("/api/v1/auth/token", json={"userId": "u", "role": "user"})).json()["token"]
    async with client(api, {"Authorization": f"Bearer {user_token}"}) as user:
        refused = await user.post(f"/api/v1/rooms/{room_id}/secrets/rotate")
        assert refused.status_code == 403 and "admin" in refused.json()["message"]
    assert (await api.post("/api/v1/rooms/no-such-room/secrets/rotate")).status_code == 404

    rotated = await api.post(f"/api/v1/rooms/{room_id}/secrets/rotate")
    assert rotated.status_code == 200, rotated.text
    after = rotated.json()
    assert after["roomId"] == room_id
    assert after["moderatorSecret"] != before["moderatorSecret"] and after["speakerSecret"] != before["speakerSecret"]

    # Tokens from before are refused at every door, with a message saying what to do; old secrets exchange nothing.
    for old in (moderator, speaker):
        gone = await old.get(f"/api/v1/rooms/{room_id}")
        assert gone.status_code == 401 and "X-Room-Member-Token" in gone.json()["message"]
        assert "rotated" in gone.json()["message"]
    talk = await moderator.post(f"{OCS}/recording/{room_id}", json={"status": 1}, headers={"OCS-APIRequest": "true"})
    assert talk.status_code == 401
    assert (await exchange(api, room_id, before["moderatorSecret"], "Alice")).status_code == 400
    fresh = await member(api, room_id, "moderator")
    assert (await fresh.get(f"/api/v1/rooms/{room_id}")).status_code == 200
    for http in (moderator, speaker, fresh):
        await http.aclose()


async def test_closing_or_deleting_a_room_revokes_its_member_tokens(stacks: StackFactory) -> None:
    stack = await stacks.start(recorder=False)
    api = stack.api
    closed, deleted = await create_room(api, "Closed"), await create_room(api, "Deleted")
    closed_member, deleted_member = await member(api, closed, "moderator"), await member(api, deleted, "speaker")
    assert (await api.delete(f"/api/v1/rooms/{closed}", params={"withRecordings": "close"})).status_code == 200
    assert (await api.delete(f"/api/v1/rooms/{deleted}")).status_code == 200

    answer = await closed_member.get("/api/v1/notifications")
    assert answer.status_code == 401 and "is closed" in answer.json()["message"]
    answer = await deleted_member.get("/api/v1/recordings")
    assert answer.status_code == 401 and "no longer exists" in answer.json()["message"]
    for http in (closed_member, deleted_member):
        await http.aclose()


async def test_notifications_follow_the_token_identity_not_the_chosen_name(stacks: StackFactory) -> None:
    stack = await stacks.start(recorder=False)
    api = stack.api
    room_id = await create_room(api)
    speaker_secret = (await api.get(f"/api/v1/rooms/{room_id}")).json()["speakerSecret"]
    bob = (await exchange(api, room_id, speaker_secret, "Bob")).json()
    impostor = (await exchange(api, room_id, speaker_secret, "Bob")).json()
    assert bob["memberId"].startswith("member:") and bob["memberId"] != impostor["memberId"]
    row = NotificationRow(
        room_id=room_id,
        recording_id=f"{room_id}--EG_x--1",
        dedupe_key=f"{room_id}:failed",
        user=bob["memberId"],  # as the workflow addresses the owner of a recording Bob started
        moderators=False,
        subject="recording_failed",
        message="recording_failed",
        timestamp=int(time.time()),
    )
    await stack.catalog.add_notification(row)
    bob_token = (await api.post("/api/v1/auth/token", json={"userId": "Bob", "role": "user"})).json()["token"]

    async def seen_by(headers: dict[str, str]) -> list[str | None]:
        async with client(api, headers) as http:
            answer = await http.get("/api/v1/notifications")
            assert answer.status_code == 200, answer.text
            return [n["user"] for n in answer.json()["notifications"]]

    assert await seen_by({"X-Room-Member-Token": bob["token"]}) == [bob["memberId"]]
    assert await seen_by({"X-Room-Member-Token": impostor["token"]}) == []  # same display name, another identity
    assert await seen_by({"Authorization": f"Bearer {bob_token}"}) == []  # a user "Bob" is not member Bob


async def test_recording_ids_are_capped_and_skipped_ids_stay_small(
    stacks: StackFactory, caplog: pytest.LogCaptureFixture
) -> None:
    stack = await stacks.start()
    api = stack.api
    room_id = await create_room(api)
    await join(api, room_id, "Alice")
    stored = (await record(api, room_id, seconds=0.5))["recordingId"]

    too_many = ",".join(f"{room_id}--EG_{i}--x" for i in range(101))
    for method, path in (("DELETE", "/api/v1/recordings"), ("GET", "/api/v1/recordings/download")):
        refused = await api.request(method, path, params={"recordingIds": too_many})
        assert refused.status_code == 422, refused.text
        assert "At most 100" in refused.json()["details"][0]["message"]
    assert (await api.get(f"/api/v1/recordings/{stored}")).status_code == 200  # nothing was deleted

    # 99 unknown ids of 120 characters each: the header lists what fits in under 4 KiB, and counts them all.
    unknown = [f"{room_id}--EG_{i:03d}--{'x' * 80}"[:120] for i in range(99)]
    caplog.set_level(logging.INFO, logger="callrec.api.meet.files")
    caplog.clear()
    zipped = await api.get("/api/v1/recordings/download", params={"recordingIds": ",".join([stored, *unknown])})
    assert zipped.status_code == 200
    listed = zipped.headers["X-Skipped-Recordings"]
    assert len(listed.encode()) + len(zipped.headers["X-Skipped-Recordings-Count"]) < 4096
    assert zipped.headers["X-Skipped-Recordings-Count"] == "99"
    names = listed.split(",")
    assert 0 < len(names) < 99 and names == unknown[: len(names)]
    assert len([r for r in caplog.records if r.name == "callrec.api.meet.files"]) <= 1  # one line, not one per id


async def test_401_and_403_say_what_to_send_and_what_is_missing(stacks: StackFactory) -> None:
    stack = await stacks.start(recorder=False)
    api = stack.api
    room_id = await create_room(api)
    async with client(api, {}) as anonymous:
        missing = await anonymous.get("/api/v1/recordings")
    assert missing.status_code == 401 and missing.json()["error"] == "Authentication Error"
    assert "X-API-KEY" in missing.json()["message"] and "Authorization: Bearer" in missing.json()["message"]
    async with client(api, {"Authorization": "Bearer nope"}) as bad:
        assert "Authorization: Bearer" in (await bad.get("/api/v1/recordings")).json()["message"]

    speaker = await member(api, room_id, "speaker")
    denied = await speaker.delete("/api/v1/recordings", params={"recordingIds": f"{room_id}--EG_1--x"})
    assert denied.status_code == 403 and denied.json() == {
        "error": "Authorization Error",
        "message": "Insufficient permissions: needs recordingDelete",
    }
    rooms = await speaker.get("/api/v1/rooms")
    assert rooms.status_code == 401 and "X-API-KEY" in rooms.json()["message"]  # not a credential it takes
    await speaker.aclose()
