"""What an operator reads in the Temporal UI: each recording's summary, and search attributes that filter by room name,
layout, egress and error code (issue 19's first step; the real Temporal dev server answers the queries)."""

from __future__ import annotations

import asyncio

from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client

from callrec.domain.recording import EGRESS_ATTR, LAYOUT_ATTR, ROOM_NAME_ATTR
from tests.conftest import SECRET, StackFactory, free_port
from tests.helpers import OCS, create_room, join
from tests.talk_server import OCS_HEADERS, TalkRecordingServer, talk_server

__all__ = ["talk_server"]  # the fixture


async def listed(client: Client, query: str, expected: int) -> list[str]:
    """The workflow ids the query finds, once visibility caught up."""
    for _ in range(100):
        found = [execution.id async for execution in client.list_workflows(query)]
        if len(found) >= expected:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"{query!r} found {found}")


async def test_recordings_say_what_they_are_and_failures_filter_by_error_code(
    stacks: StackFactory, talk_server: TalkRecordingServer
) -> None:
    api_port = free_port()
    public_url = f"http://localhost:{api_port}"
    talk_server.backends[public_url] = SECRET
    stack = await stacks.start(
        recorder=False, egress="talk", talk_recording_server=talk_server.url, api_port=api_port, public_url=public_url
    )
    api = stack.api
    room_id = await create_room(api, "Board <meeting>", layout="speaker")
    await join(api, room_id, "Alice")
    talk_server.start_answer = 400  # the recording server refuses: the recording fails `egress_unavailable`
    assert (await api.post(f"{OCS}/recording/{room_id}", data={"status": "1"}, headers=OCS_HEADERS)).status_code == 500
    talk_server.start_answer = 200
    assert (await api.post(f"{OCS}/recording/{room_id}", data={"status": "1"}, headers=OCS_HEADERS)).status_code == 200

    client = stack.client
    failed = await listed(client, f'ErrorCode = "egress_unavailable" AND RoomId = "{room_id}"', 1)
    everything = await listed(client, 'RoomName = "Board <meeting>" AND Layout = "speaker" AND Egress = "talk"', 2)
    assert len(failed) == 1 and set(failed) < set(everything) and len(everything) == 2
    [running] = [i for i in everything if i not in failed]

    description = await client.get_workflow_handle(running).describe()
    summary = await description.static_summary()
    assert summary == (
        f"Recording of 'Board <meeting>' ({room_id}): video, speaker, recorded by talk, started by api-key"
    )
    attributes = description.typed_search_attributes
    assert (attributes[ROOM_NAME_ATTR], attributes[LAYOUT_ATTR], attributes[EGRESS_ATTR]) == (
        "Board <meeting>",
        "speaker",
        "talk",
    )
    assert "waiting up to" in await current_details(client, running)  # what it does now: waits for `started`
    assert (await current_details(client, failed[0])).startswith("Failed (egress_unavailable): The recorder could not")


async def current_details(client: Client, workflow_id: str) -> str:
    """What the Temporal UI shows under "Current details" (the SDK's built-in metadata query)."""
    metadata = await client.get_workflow_handle(workflow_id).query(
        "__temporal_workflow_metadata", result_type=WorkflowMetadata
    )
    return str(metadata.current_details)
