"""The log lines an operator reads: JSON that parses, each line about a recording naming it, its room and its
workflow, an access line per request, and no traceback for what is expected to go wrong."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import structlog

from callrec import logs
from callrec.domain import signing
from tests.conftest import SECRET, StackFactory
from tests.e2e.test_failures import scripted_room, start_with_scripted_recorder
from tests.helpers import create_room, join, record, wait_for_status
from tests.recording_server import ScriptedRecordingServer

Line = dict[str, Any]
IDS = ("recording_id", "room_id", "workflow_id")


class Captured:
    """What this process logged, as `CALLREC_LOG_FORMAT=json` writes it."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def lines(self) -> list[Line]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]  # every line parses

    async def wait_for(self, found: Callable[[Line], bool]) -> Line:
        for _ in range(400):
            if match := [line for line in self.lines() if found(line)]:
                return match[0]
            await asyncio.sleep(0.05)
        raise AssertionError(f"no such line in:\n{self.stream.getvalue()}")


@pytest.fixture
def json_logs() -> Iterator[Captured]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    captured = Captured()
    logs.configure("stack", "json", "info", captured.stream)
    yield captured
    root.handlers, root.level = handlers, level
    structlog.reset_defaults()


def requests(lines: list[Line], method: str, route: str) -> list[Line]:
    return [
        line for line in lines if line["message"] == "request" and (line["method"], line["route"]) == (method, route)
    ]


async def test_a_recordings_lines_name_it_and_each_request_has_an_access_line(
    stacks: StackFactory, json_logs: Captured
) -> None:
    stack = await stacks.start()
    room_id = await create_room(stack.api)
    await join(stack.api, room_id, "Alice")
    recording = await record(stack.api, room_id)
    assert recording["status"] == "complete", recording
    recording_id = recording["recordingId"]

    # The recorder asked to stop a recording it no longer has: a 404, told in its access line, no traceback.
    body = json.dumps({"type": "stop", "stop": {"recordingId": recording_id}}).encode()
    async with httpx.AsyncClient(base_url=stack.settings.recorder_url) as recorder:
        refused = await recorder.post(
            f"/api/v1/room/{room_id}", content=body, headers=signing.signed_headers(SECRET, body)
        )
    assert refused.status_code == 404
    media = await stack.api.get(f"/api/v1/recordings/{recording_id}/media")  # the file sent by pathsend
    assert media.status_code == 200 and media.content
    # The access line of a file the server sent itself is written once the server reports the send done, which can be
    # just after the client has the last byte.
    await json_logs.wait_for(lambda line: line.get("route") == "/api/v1/recordings/<recording_id>/media")

    lines = json_logs.lines()
    about = [line for line in lines if line.get("recording_id") == recording_id]
    assert {(line["room_id"], line["workflow_id"]) for line in about} == {(room_id, recording_id)}
    assert all(line["process"] == "stack" and line["timestamp"] and line["level"] for line in lines)

    [start] = requests(lines, "POST", "/api/v1/recordings")
    assert (start["status"], start["recording_id"], start["room_id"]) == (201, recording_id, room_id)
    assert isinstance(start["duration_ms"], float) and start["duration_ms"] > 0
    [stop] = requests(lines, "POST", "/api/v1/recordings/<recording_id>/stop")
    assert (stop["status"], stop["recording_id"], stop["workflow_id"]) == (202, recording_id, recording_id)
    polls = requests(lines, "GET", "/api/v1/recordings/<recording_id>")
    assert polls and all(poll["status"] == 200 and poll["recording_id"] == recording_id for poll in polls)
    callbacks = requests(lines, "POST", "/ocs/v2.php/apps/spreed/api/v1/recording/backend")
    assert any(callback.get("recording_id") == recording_id for callback in callbacks)  # the recorder's progress
    [lost] = requests(lines, "POST", "/api/v1/room/<token>")  # the recorder's own access line
    [played] = requests(lines, "GET", "/api/v1/recordings/<recording_id>/media")
    assert (played["status"], played["recording_id"]) == (200, recording_id)
    assert (lost["status"], lost["recording_id"], lost["room_id"]) == (404, recording_id, room_id)
    assert not any("?" in line["route"] for line in lines if line["message"] == "request")

    # The recorder's part, logged inside its activity, names the recording too.
    assert any(line["logger"] == "callrec.recorder.pool" and line.get("activity") == "record_part" for line in about)
    assert not [line for line in lines if "exception" in line], json_logs.stream.getvalue()


async def test_a_stop_the_recording_server_answers_404_is_one_warning_without_a_traceback(
    stacks: StackFactory, scripted: ScriptedRecordingServer, json_logs: Captured
) -> None:
    stack, room_id = await scripted_room(stacks, scripted)
    recording_id = await start_with_scripted_recorder(stack.api, scripted, room_id)
    scripted.stop_status = 404  # the recording server lost the recording

    assert (await stack.api.post(f"/api/v1/recordings/{recording_id}/stop")).status_code == 202
    failed = await json_logs.wait_for(lambda line: line.get("error_type") == "EgressNotFound")
    assert failed["level"] == "warning" and failed["activity"] == "stop_egress"
    assert [failed[key] for key in IDS] == [recording_id, room_id, recording_id]
    assert failed["error"] == "recording server does not know this recording"
    told = await json_logs.wait_for(lambda line: str(line["message"]).startswith("stopping egress failed"))
    assert [told[key] for key in IDS] == [recording_id, room_id, recording_id]  # the workflow's own line

    # Without a recorder that has it, the recording fails; the failure is told once, without a stack.
    assert (await wait_for_status(stack.api, recording_id, {"complete", "failed"}))["status"] == "failed"
    assert not [line for line in json_logs.lines() if "exception" in line], json_logs.stream.getvalue()
