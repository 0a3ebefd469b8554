"""Credentials as apps and call participants get them."""

from __future__ import annotations

import httpx


async def member_token(api: httpx.AsyncClient, room_id: str, role: str) -> str:
    room = (await api.get(f"/api/v1/rooms/{room_id}")).json()
    secret = room["moderatorSecret" if role == "moderator" else "speakerSecret"]
    async with httpx.AsyncClient(base_url=str(api.base_url)) as anonymous:
        response = await anonymous.post(
            f"/api/v1/rooms/{room_id}/members/token", json={"secret": secret, "participantName": "Alice"}
        )
    assert response.status_code == 200, response.text
    assert response.json()["role"] == role
    token: str = response.json()["token"]
    return token


def client(api: httpx.AsyncClient, headers: dict[str, str]) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=str(api.base_url), headers=headers, timeout=30)


async def member_client(api: httpx.AsyncClient, room_id: str, role: str) -> httpx.AsyncClient:
    """A client of the same API carrying a member token of `room_id` with `role`."""
    return client(api, {"X-Room-Member-Token": await member_token(api, room_id, role)})
