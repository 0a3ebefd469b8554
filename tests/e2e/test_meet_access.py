"""Room-scoped access as OpenVidu Meet 3.8 has it: credentials, user roles, registered room members, recording URLs."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.conftest import StackFactory
from tests.helpers import SMALL, join, record
from tests.test_access_helpers import client, member_token

INSUFFICIENT = {"error": "Authorization Error", "message": "Insufficient permissions to access this resource"}


async def user_client(api: httpx.AsyncClient, user_id: str, role: str = "user") -> httpx.AsyncClient:
    token = (await api.post("/api/v1/auth/token", json={"userId": user_id, "role": role})).json()["token"]
    return client(api, {"Authorization": f"Bearer {token}"})


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["recordingId"] for r in response.json()["recordings"]]


async def test_users_reach_only_their_rooms_and_members_hold_their_own_permissions(stacks: StackFactory) -> None:
    stack = await stacks.start()
    api = stack.api
    olga, sam = await user_client(api, "olga"), await user_client(api, "sam")
    boss = await user_client(api, "boss", "admin")
    config: dict[str, Any] = {"recording": {"encoding": SMALL}}

    # A USER-role user creates a room and owns it (sees its secrets); the API key creates the other one.
    created = await olga.post("/api/v1/rooms", json={"roomName": "Olga's", "config": config})
    assert created.status_code == 201, created.text
    room_a = created.json()["roomId"]
    assert "moderatorSecret" in created.json()
    room_b = (await api.post("/api/v1/rooms", json={"roomName": "Other", "config": config})).json()["roomId"]
    await join(api, room_a, "Alice")
    await join(api, room_b, "Bob")
    rec_a, rec_b = await asyncio.gather(record(api, room_a), record(api, room_b))
    rec_a, rec_b = rec_a["recordingId"], rec_b["recordingId"]

    # Credentials: the member token with or without `Bearer `; credentials an endpoint does not take count as absent.
    token_a = await member_token(api, room_a, "moderator")
    for value in (token_a, f"Bearer {token_a}"):
        async with client(api, {"X-Room-Member-Token": value}) as member:
            assert ids(await member.get("/api/v1/recordings")) == [rec_a]
            not_taken = await member.get("/api/v1/rooms")
            assert not_taken.status_code == 401 and not_taken.json()["error"] == "Authentication Error"
            members_refused = await member.post(
                f"/api/v1/rooms/{room_a}/members", json={"name": "X", "baseRole": "speaker"}
            )
            assert members_refused.status_code == 401
    assert (await olga.post("/api/v1/recordings", json={"roomId": room_a})).status_code == 401  # apps and members

    # The owner reaches its room only: another room's recording is Meet's 403, the list shows nothing else.
    assert ids(await olga.get("/api/v1/recordings", params={"maxItems": 100})) == [rec_a]
    assert (await olga.get(f"/api/v1/recordings/{rec_a}")).status_code == 200
    assert (await olga.get(f"/api/v1/recordings/{rec_a}/media")).status_code == 200
    for method, path in (
        ("GET", f"/api/v1/recordings/{rec_b}"),
        ("GET", f"/api/v1/recordings/{rec_b}/media"),
        ("GET", f"/api/v1/recordings/{rec_b}/url"),
        ("DELETE", f"/api/v1/recordings/{rec_b}"),
        ("GET", f"/api/v1/rooms/{room_b}"),
    ):
        refused = await olga.request(method, path)
        assert (refused.status_code, refused.json()) == (403, INSUFFICIENT), (method, path)
    zip_b = await olga.get("/api/v1/recordings/download", params={"recordingIds": rec_b})
    assert zip_b.status_code == 400 and zip_b.json()["error"] == "Recording Error"
    bulk_b = await olga.delete("/api/v1/recordings", params={"recordingIds": rec_b})
    assert bulk_b.status_code == 400
    assert bulk_b.json()["failed"] == [{"recordingId": rec_b, "error": INSUFFICIENT["message"]}]
    # An admin user reaches every room.
    assert {rec_a, rec_b} <= set(ids(await boss.get("/api/v1/recordings", params={"maxItems": 100})))

    # Room members: only the room's managers register them (olga does not manage room B).
    assert (await sam.get("/api/v1/recordings")).json()["recordings"] == []
    spec = {"userId": "sam", "baseRole": "speaker"}
    assert (await olga.post(f"/api/v1/rooms/{room_b}/members", json=spec)).json() == INSUFFICIENT
    added = await api.post(f"/api/v1/rooms/{room_b}/members", json=spec)
    assert added.status_code == 201, added.text
    member = added.json()
    assert added.headers["Location"].endswith(f"/api/v1/rooms/{room_b}/members/sam")
    assert member["memberId"] == "sam" and member["type"] == "user" and member["baseRole"] == "speaker"
    assert member["effectivePermissions"]["recordingPlay"] is True
    assert member["effectivePermissions"]["recordingDelete"] is False
    assert "customPermissions" not in member
    again = await api.post(f"/api/v1/rooms/{room_b}/members", json=spec)
    assert again.status_code == 409
    assert again.json() == {
        "error": "Room Member Error",
        "message": f"User 'sam' is already a member of room '{room_b}'",
    }
    owner = await olga.post(f"/api/v1/rooms/{room_a}/members", json={"userId": "olga", "baseRole": "speaker"})
    assert owner.status_code == 409
    assert (await api.post(f"/api/v1/rooms/{room_b}/members", json={"baseRole": "speaker"})).status_code == 422
    for odd in ("a\nb", "team/alice", "x" * 129):  # a user id names a path segment and a header value
        refused_id = await api.post(f"/api/v1/rooms/{room_b}/members", json={"userId": odd, "baseRole": "speaker"})
        assert refused_id.status_code == 422 and refused_id.json()["details"][0]["field"] == "userId", odd
    # A guest joins with its role's room secret: permissions of its own could not be enforced, so none are taken.
    guest = {"name": "Bob", "baseRole": "moderator", "customPermissions": {"recordingDelete": False}}
    refused_guest = await api.post(f"/api/v1/rooms/{room_b}/members", json=guest)
    assert refused_guest.status_code == 422 and "registered users" in refused_guest.text, refused_guest.text
    listed = (await api.get(f"/api/v1/rooms/{room_b}/members")).json()
    assert [m["memberId"] for m in listed["members"]] == ["sam"] and listed["pagination"]["isTruncated"] is False
    assert (await sam.get(f"/api/v1/rooms/{room_b}/members/sam")).json()["memberId"] == "sam"  # itself
    missing = await api.get(f"/api/v1/rooms/{room_b}/members/nobody")
    assert missing.status_code == 404
    assert missing.json() == {
        "error": "Room Member Error",
        "message": f"Room member 'nobody' not found in room '{room_b}'",
    }

    # The registered member reaches its room with its role's permissions: list and play, not delete.
    assert ids(await sam.get("/api/v1/recordings")) == [rec_b]
    assert (await sam.get(f"/api/v1/recordings/{rec_b}/media")).status_code == 200
    assert (await sam.delete(f"/api/v1/recordings/{rec_b}")).json() == INSUFFICIENT
    assert (await sam.get(f"/api/v1/recordings/{rec_a}")).json() == INSUFFICIENT

    # Its member token (a refresh with its user token) carries the same permissions; a member token refreshes.
    refreshed = await sam.post(f"/api/v1/rooms/{room_b}/members/token/refresh")
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["memberId"] == "sam" and refreshed.json()["role"] == "speaker"
    assert "recordingDelete" not in refreshed.json()["permissions"]
    async with client(api, {"X-Room-Member-Token": f"Bearer {refreshed.json()['token']}"}) as sam_member:
        assert ids(await sam_member.get("/api/v1/recordings")) == [rec_b]
        again_refreshed = await sam_member.post(f"/api/v1/rooms/{room_b}/members/token/refresh")
        assert again_refreshed.status_code == 200 and again_refreshed.json()["memberId"] == "sam"
        assert (await sam_member.post(f"/api/v1/rooms/{room_a}/members/token/refresh")).status_code == 403
    assert (await olga.post(f"/api/v1/rooms/{room_b}/members/token/refresh")).json() == INSUFFICIENT

    # Custom permissions (the deprecated `can*` spellings too) override the role's.
    changed = await api.put(
        f"/api/v1/rooms/{room_b}/members/sam", json={"customPermissions": {"canDeleteRecordings": True}}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["customPermissions"] == {"recordingDelete": True}
    assert changed.json()["effectivePermissions"]["recordingDelete"] is True
    # A member token minted for a registered user counts for the registration as it is now, not as minted.
    sam_member_headers = {"X-Room-Member-Token": refreshed.json()["token"]}
    async with client(api, sam_member_headers) as sam_member:
        now_allowed = await sam_member.post(f"/api/v1/rooms/{room_b}/members/token/refresh")
        assert "recordingDelete" in now_allowed.json()["permissions"], now_allowed.text
    bad = await api.put(f"/api/v1/rooms/{room_b}/members/sam", json={"customPermissions": {"canFly": True}})
    assert bad.status_code == 422

    # Removing the member takes its reach away.
    removed = await api.delete(f"/api/v1/rooms/{room_b}/members/sam")
    assert removed.json() == {"message": f"Member 'sam' deleted successfully from room '{room_b}'"}
    assert (await sam.get("/api/v1/recordings")).json()["recordings"] == []
    assert (await api.delete(f"/api/v1/rooms/{room_b}/members/sam")).status_code == 404
    async with client(api, sam_member_headers) as removed_member:  # its member token is refused, and not renewed
        for method, path in (("GET", "/api/v1/recordings"), ("POST", f"/api/v1/rooms/{room_b}/members/token/refresh")):
            gone = await removed_member.request(method, path)
            assert gone.status_code == 401 and "no longer has 'sam' as a member" in gone.json()["message"], gone.text

    # Recording URLs: the player page with the secret; refused for the public variant while anonymous access is off.
    base = str(api.base_url).rstrip("/")
    public = (await olga.get(f"/api/v1/recordings/{rec_a}/url")).json()["url"]
    assert public.startswith(f"{base}/recording/{rec_a}?secret=")
    secret = public.split("?secret=", 1)[1]
    async with httpx.AsyncClient() as anonymous:
        media = await anonymous.get(f"{base}/api/v1/recordings/{rec_a}/media", params={"recordingSecret": secret})
        assert media.status_code == 200
    off = await olga.put(f"/api/v1/rooms/{room_a}/config", json={"config": {"recording": {"publicAccess": False}}})
    assert off.status_code == 200, off.text  # its owner manages the room
    not_owner = await sam.put(f"/api/v1/rooms/{room_a}/config", json={"config": {"recording": {"enabled": False}}})
    assert not_owner.json() == INSUFFICIENT
    refused = await olga.get(f"/api/v1/recordings/{rec_a}/url")
    assert refused.status_code == 403 and refused.json()["error"] == "Recording Error"
    private = await olga.get(f"/api/v1/recordings/{rec_a}/url", params={"privateAccess": "true"})
    assert private.status_code == 200 and private.json()["url"].startswith(f"{base}/recording/{rec_a}?secret=")
    assert private.json()["url"] != public

    for http in (olga, sam, boss):
        await http.aclose()
