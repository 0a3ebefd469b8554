"""`fields` and `X-Fields` trim the recording objects that start and stop return, as they do for get and list."""

from __future__ import annotations

from tests.conftest import StackFactory
from tests.helpers import create_room, join, wait_for_status


async def test_start_and_stop_return_only_the_requested_fields(stacks: StackFactory) -> None:
    stack = await stacks.start()
    room_id = await create_room(stack.api)
    await join(stack.api, room_id, "Alice")

    started = await stack.api.post(
        "/api/v1/recordings", params={"fields": "recordingId,status,nonsense"}, json={"roomId": room_id}
    )
    assert started.status_code == 201
    assert started.json() == {"recordingId": started.json()["recordingId"], "status": "active"}
    recording_id = started.json()["recordingId"]

    stopped = await stack.api.post(f"/api/v1/recordings/{recording_id}/stop", headers={"X-Fields": "status,endDate"})
    assert stopped.status_code == 202
    assert set(stopped.json()) == {"status", "endDate"} and stopped.json()["status"] == "ending"

    await wait_for_status(stack.api, recording_id, {"complete"})
    everything = await stack.api.get(f"/api/v1/recordings/{recording_id}", params={"fields": "nonsense"})
    assert "size" in everything.json() and everything.json()["status"] == "complete"  # only unknown names: all
