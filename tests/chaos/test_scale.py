"""Several API and worker processes at once, on one catalog: the rules hold across processes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.chaos.harness import ChaosStack
from tests.conftest import free_port
from tests.helpers import stored_keys


async def test_two_apis_and_two_workers_give_one_recording_per_room(tmp_path: Path, catalog_url: str) -> None:
    stack = ChaosStack(tmp_path, database_url=catalog_url)
    try:
        await stack.start()
        port = free_port()
        stack.start_another("api", "api-2", CALLREC_API_PORT=str(port))
        metrics_ports = {
            "CALLREC_WORKER_METRICS_PORT": str(free_port()),
            "CALLREC_TEMPORAL_METRICS_PORT": str(free_port()),
        }
        stack.start_another("worker", "worker-2", **metrics_ports)  # its own ports, as a second API needs
        other = await stack.api_client(port)
        room = await stack.room_in_a_call()

        # Racing starts for one room through both APIs: the catalog lets one through.
        starts = await asyncio.gather(
            *(api.post("/api/v1/recordings", json={"roomId": room}) for api in [stack.api, other] * 3)
        )
        assert sorted(r.status_code for r in starts) == [201, 409, 409, 409, 409, 409], [r.text for r in starts]
        [winner] = [r.json() for r in starts if r.status_code == 201]
        await asyncio.sleep(1.5)
        stopped = await other.post(f"/api/v1/recordings/{winner['recordingId']}/stop")
        assert stopped.status_code == 202, stopped.text

        [done] = await stack.wait_for([room], {"complete", "failed"})
        assert (done["recordingId"], done["status"]) == (winner["recordingId"], "complete")
        assert stack.store is not None
        assert await stack.store.list_keys("recordings/") == stored_keys(room, done["recordingId"])
        assert await stack.chat_of(room) == ["recording_started", "recording_stopped"]
        await other.aclose()
    finally:
        await stack.close()
