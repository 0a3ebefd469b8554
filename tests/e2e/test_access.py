"""Who may do what: API key, user tokens, room member tokens, and recording secrets, over real HTTP."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import StackFactory
from tests.helpers import create_room, join, record
from tests.test_access_helpers import client, member_token


async def call(http: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> int:
    return (await http.request(method, path, **kwargs)).status_code


async def test_credentials_permissions_and_room_confinement(stacks: StackFactory) -> None:
    stack = await stacks.start()
    admin = stack.api
    room_a, room_b = await create_room(admin, "Room A"), await create_room(admin, "Room B")
    await join(admin, room_a, "Alice")
    await join(admin, room_b, "Bob")
    rec_a, rec_b = (await record(admin, room_a))["recordingId"], (await record(admin, room_b))["recordingId"]
    a_moderator = client(admin, {"X-Room-Member-Token": await member_token(admin, room_a, "moderator")})
    a_speaker = client(admin, {"X-Room-Member-Token": await member_token(admin, room_a, "speaker")})
    user_token = (await admin.post("/api/v1/auth/token", json={"userId": "u1", "role": "user"})).json()["token"]
    admin_token = (await admin.post("/api/v1/auth/token", json={"userId": "u2", "role": "admin"})).json()["token"]
    user = client(admin, {"Authorization": f"Bearer {user_token}"})
    admin_user = client(admin, {"Authorization": f"Bearer {admin_token}"})
    anonymous = client(admin, {})

    # A member token of room A never reaches room B, whatever the endpoint.
    other_room = [
        ("GET", f"/api/v1/recordings/{rec_b}", {}),
        ("GET", f"/api/v1/recordings/{rec_b}/media", {}),
        ("GET", f"/api/v1/recordings/{rec_b}/download", {}),
        ("GET", f"/api/v1/recordings/{rec_b}/url", {}),
        ("POST", f"/api/v1/recordings/{rec_b}/stop", {}),
        ("DELETE", f"/api/v1/recordings/{rec_b}", {}),
        ("POST", "/api/v1/recordings", {"json": {"roomId": room_b}}),
        ("GET", f"/api/v1/rooms/{room_b}", {}),
        ("GET", f"/api/v1/rooms/{room_b}/config", {}),
        ("GET", f"/api/v1/rooms/{room_b}/call", {}),
    ]
    for method, path, kwargs in other_room:
        assert await call(a_moderator, method, path, **kwargs) == 403, (method, path)
    # Endpoints that take no member token: it counts as absent (401), as in OpenVidu Meet.
    not_for_members = [
        ("PUT", f"/api/v1/rooms/{room_b}/config", {"json": {"config": {"recording": {"enabled": False}}}}),
        ("PUT", f"/api/v1/rooms/{room_b}/call", {"json": {"participants": []}}),
        ("DELETE", f"/api/v1/rooms/{room_b}/call", {}),
        ("DELETE", f"/api/v1/rooms/{room_b}", {}),
        ("GET", "/api/v1/rooms", {}),
        ("POST", "/api/v1/auth/token", {"json": {"userId": "x"}}),
    ]
    for method, path, kwargs in not_for_members:
        assert await call(a_moderator, method, path, **kwargs) == 401, (method, path)
    for path in (f"/api/v1/recordings/{rec_a}", f"/api/v1/recordings/{rec_a}/media",
                 f"/api/v1/recordings/{rec_a}/download", f"/api/v1/recordings/{rec_a}/url",
                 f"/api/v1/rooms/{room_a}", f"/api/v1/rooms/{room_a}/config"):  # fmt: skip
        assert await call(a_moderator, "GET", path) == 200, path
        assert await call(a_speaker, "GET", path) == 200, path
    listed = (await a_moderator.get("/api/v1/recordings", params={"roomId": room_b})).json()["recordings"]
    assert [r["recordingId"] for r in listed] == [rec_a]
    room_view = (await a_moderator.get(f"/api/v1/rooms/{room_a}")).json()
    assert "moderatorSecret" not in room_view and "speakerSecret" not in room_view

    zipped = await a_moderator.get("/api/v1/recordings/download", params={"recordingIds": f"{rec_a},{rec_b}"})
    assert zipped.status_code == 200 and zipped.headers["X-Skipped-Recordings"] == rec_b
    only_b = await a_moderator.get("/api/v1/recordings/download", params={"recordingIds": rec_b})
    assert only_b.status_code == 400

    # A speaker may watch but not control or delete.
    assert await call(a_speaker, "POST", "/api/v1/recordings", json={"roomId": room_a}) == 403
    assert await call(a_speaker, "DELETE", f"/api/v1/recordings/{rec_a}") == 403

    # User tokens: `user` reaches only its own rooms (none here; see test_meet_access); neither role starts
    # recordings (apps and members do: a user token counts as absent there, 401).
    assert (await user.get("/api/v1/recordings", params={"maxItems": 100})).json()["recordings"] == []
    assert await call(user, "GET", f"/api/v1/recordings/{rec_b}/media") == 403
    assert await call(user, "DELETE", f"/api/v1/recordings/{rec_b}") == 403
    assert await call(user, "POST", "/api/v1/recordings", json={"roomId": room_b}) == 401
    assert await call(admin_user, "POST", "/api/v1/recordings", json={"roomId": room_b}) == 401
    assert await call(admin_user, "GET", "/api/v1/rooms") == 200

    # No credential, or a bad one: 401, and the highest credential present must be valid.
    assert await call(anonymous, "GET", "/api/v1/recordings") == 401
    bad_bearer = client(admin, {"Authorization": "Bearer nope"})
    assert (await bad_bearer.get("/api/v1/recordings")).json() == {
        "error": "Authentication Error", "message": "Invalid token in Authorization: Bearer: invalid token"
    }  # fmt: skip
    assert await call(client(admin, {"Authorization": "Basic abc"}), "GET", "/api/v1/recordings") == 401
    assert await call(client(admin, {"X-Room-Member-Token": "nope"}), "GET", "/api/v1/recordings") == 401
    wrong_key_good_token = client(admin, {"X-API-KEY": "wrong"} | dict(a_moderator.headers))
    assert await call(wrong_key_good_token, "GET", "/api/v1/recordings") == 401
    assert await call(anonymous, "GET", f"/api/v1/recordings/{rec_a}") == 401
    assert await call(anonymous, "POST", f"/api/v1/rooms/{room_a}/members/token", json={"secret": "wrong"}) == 400
    assert await call(anonymous, "POST", "/api/v1/rooms/no-such-room/members/token", json={"secret": "x"}) == 404
    assert await call(anonymous, "POST", f"/api/v1/rooms/{room_a}/members/token", json={}) == 422

    # The admin user deletes; the bulk delete of a member skips and reports another room's recording.
    bulk = await a_moderator.delete("/api/v1/recordings", params={"recordingIds": f"{rec_a},{rec_b}"})
    assert bulk.status_code == 400
    assert bulk.json()["deleted"] == [rec_a]
    assert bulk.json()["failed"] == [{"recordingId": rec_b, "error": "Recording belongs to another room"}]
    assert await call(admin_user, "DELETE", f"/api/v1/recordings/{rec_b}") == 200
    for http in (a_moderator, a_speaker, user, admin_user, anonymous, bad_bearer):
        await http.aclose()


async def test_shared_urls_carry_the_recording_secrets(stacks: StackFactory) -> None:
    stack = await stacks.start()
    admin = stack.api
    room_id = await create_room(admin)
    await join(admin, room_id, "Alice")
    rec = (await record(admin, room_id))["recordingId"]
    media = (await admin.get(f"/api/v1/recordings/{rec}/media")).content
    public_page = (await admin.get(f"/api/v1/recordings/{rec}/url")).json()["url"]
    private_page = (await admin.get(f"/api/v1/recordings/{rec}/url", params={"privateAccess": "true"})).json()["url"]
    page = f"{str(admin.base_url).rstrip('/')}/recording/{rec}?secret="
    assert public_page != private_page and public_page.startswith(page) and private_page.startswith(page)
    # The URLs are the player page's (Meet's `/recording/{id}?secret=`); its secret opens the API's endpoints.
    public_url = public_page.replace(f"/recording/{rec}?secret=", f"/api/v1/recordings/{rec}/media?recordingSecret=")
    private_url = private_page.replace(f"/recording/{rec}?secret=", f"/api/v1/recordings/{rec}/media?recordingSecret=")
    maybe = await admin.get(f"/api/v1/recordings/{rec}/url", params={"privateAccess": "maybe"})
    assert maybe.status_code == 200 and maybe.json()["url"] == public_page  # Meet: only `true` means true

    async with httpx.AsyncClient() as anonymous:
        public = await anonymous.get(public_url)
        assert public.status_code == 200 and public.content == media
        download = await anonymous.get(public_url.replace("/media?", "/download?"))
        assert download.status_code == 200 and download.content == media
        assert (await anonymous.get(public_url.replace("/media?", "?"))).json()["recordingId"] == rec
        assert (await anonymous.get(private_url)).status_code == 401
        wrong = await anonymous.get(f"{admin.base_url}/api/v1/recordings/{rec}/media?recordingSecret=nope")
        assert wrong.status_code == 400 and wrong.json()["error"] == "Recording Error"

        # A signed-in caller with the private secret gets in, even a member of another room.
        other = await create_room(admin, "Other")
        outsider = {"X-Room-Member-Token": await member_token(admin, other, "speaker")}
        assert (await anonymous.get(private_url, headers=outsider)).status_code == 200
        assert (
            await anonymous.get(f"{admin.base_url}/api/v1/recordings/{rec}/media", headers=outsider)
        ).status_code == 403

        # A room that does not allow public access makes the public secret need a signed-in caller too.
        closed = await admin.put(
            f"/api/v1/rooms/{room_id}/config", json={"config": {"recording": {"publicAccess": False}}}
        )
        assert closed.status_code == 200
        assert (await anonymous.get(public_url)).status_code == 401
        assert (await anonymous.get(public_url, headers=outsider)).status_code == 200
        # ... and no public URL is handed out for it any more (Meet refuses it too); the private one still is.
        refused = await admin.get(f"/api/v1/recordings/{rec}/url")
        assert refused.status_code == 403 and refused.json()["error"] == "Recording Error"
        assert (await admin.get(f"/api/v1/recordings/{rec}/url", params={"privateAccess": "true"})).status_code == 200
