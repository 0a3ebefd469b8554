"""What an operator does from the Temporal UI, on the real dev server: Cancel a running recording (it stops the
recorder, keeps what was recorded, ends `aborted`), read why a recording failed from its closed workflow, and Reset a
recording that failed while storing (the object store was down) to the step before storing, or `callrec ops retry`
it, to get a complete recording once the store is back."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from callrec import ops
from callrec.activities.reconcile import ReconcileActivities, ReconcileInput
from callrec.domain.recording import RecordingState
from tests.conftest import Stack, StackFactory, s3_overrides
from tests.e2e.test_temporal_ui import listed
from tests.helpers import OCS, create_room, join, outcome, wait_for_status
from tests.talk_server import OCS_HEADERS, TalkRecordingServer, talk_server, talk_stack, until_room_status
from tests.tcp_proxy import SwitchableProxy

__all__ = ["talk_server"]  # the fixture


async def start_recording(stack: Stack, name: str) -> tuple[str, str]:
    room_id = await create_room(stack.api, name)
    await join(stack.api, room_id, "Alice")
    started = await stack.api.post("/api/v1/recordings", json={"roomId": room_id})
    assert started.status_code == 201, started.text
    return room_id, started.json()["recordingId"]


async def closing_failure(client: Client, recording_id: str) -> ApplicationError:
    """The failure the UI shows on a Failed workflow's page."""
    try:
        await client.get_workflow_handle(recording_id).result()
    except WorkflowFailureError as err:
        assert isinstance(err.cause, ApplicationError)
        return err.cause
    raise AssertionError(f"{recording_id} did not fail")


async def test_cancel_in_the_ui_stops_the_recorder_and_keeps_what_was_recorded(stacks: StackFactory) -> None:
    stack = await stacks.start()
    room_id, recording_id = await start_recording(stack, "Cancelled call")
    await asyncio.sleep(2.5)

    handle = stack.client.get_workflow_handle(recording_id)
    await handle.cancel()  # "Request Cancellation"
    await handle.cancel()  # pressed twice: still one stop

    ended = await wait_for_status(stack.api, recording_id, {"complete", "failed", "aborted"})
    assert (ended["status"], ended["error"], ended["errorCode"]) == ("aborted", "operator_cancelled", 499), ended
    assert "what it recorded until then is kept" in ended["details"]
    assert ended["duration"] >= 2 and ended["size"] > 0
    media = await stack.api.get(f"/api/v1/recordings/{recording_id}/media")
    assert media.status_code == 200 and len(media.content) == ended["size"]
    state = await outcome(stack.client.get_workflow_handle(recording_id))  # closed Failed, typed by the error
    assert state.file is not None and state.file.size == ended["size"]
    again = await stack.api.post("/api/v1/recordings", json={"roomId": room_id})
    assert again.status_code == 201, again.text


async def test_cancel_before_the_recorder_started_stops_it_and_records_nothing(
    stacks: StackFactory, talk_server: TalkRecordingServer
) -> None:
    api, room_id, _ = await talk_stack(stacks, talk_server)
    started = await api.post(f"{OCS}/recording/{room_id}", data={"status": "1"}, headers=OCS_HEADERS)
    assert started.status_code == 200, started.text
    await talk_server.wait_for("start")  # taken; the recording server never reports `started`
    [recording_id] = await listed(stacks.env.client, f'RoomId = "{room_id}"', 1)

    await stacks.env.client.get_workflow_handle(recording_id).cancel()

    ended = await wait_for_status(api, recording_id, {"failed", "aborted"})
    assert (ended["status"], ended["error"], ended["errorCode"]) == ("aborted", "operator_cancelled", 499), ended
    assert "before the recorder started" in ended["details"]
    await talk_server.wait_for("stop")  # the recording server was told to stop
    failure = await closing_failure(stacks.env.client, recording_id)
    assert (failure.type, failure.message, failure.non_retryable) == ("operator_cancelled", ended["details"], True)
    await until_room_status(api, room_id, 0)  # Talk's clients see the room free


def storing_task(events: list[Any]) -> int:
    """The WorkflowTaskCompleted event that scheduled storing (the recorders' pool: joining the parts, `assemble`):
    the step before storing, as an operator picks it in the UI's Reset dialog."""
    scheduled = [
        e
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name in ("assemble", "finalize")
    ]
    return int(scheduled[-1].activity_task_scheduled_event_attributes.workflow_task_completed_event_id)


async def fail_while_storing(stack: Stack, proxy: SwitchableProxy, name: str) -> tuple[str, dict[str, Any]]:
    """A recording whose worker cannot reach the object store when it stores the file: it fails
    `store_unavailable`, keeping the upload (the API staged it; the worker's path to the store is down)."""
    _, recording_id = await start_recording(stack, name)
    await asyncio.sleep(1.5)
    await proxy.down()
    assert (await stack.api.post(f"/api/v1/recordings/{recording_id}/stop")).status_code == 202
    failed = await wait_for_status(stack.api, recording_id, {"complete", "failed"}, timeout=60)
    assert (failed["status"], failed["error"], failed["errorCode"]) == ("failed", "store_unavailable", 507), failed
    assert "the upload is kept" in failed["details"]
    failure = await closing_failure(stack.client, recording_id)
    assert (failure.type, failure.message, failure.non_retryable) == ("store_unavailable", failed["details"], True)
    return recording_id, failed


async def test_a_recording_that_failed_while_storing_completes_after_a_reset_once_the_store_is_back(
    stacks: StackFactory, s3_endpoint: str
) -> None:
    proxy = SwitchableProxy(s3_endpoint)
    await proxy.up()
    stack = await stacks.start(
        **s3_overrides(s3_endpoint), store_timeout_s=4, worker_overrides={"s3_endpoint": proxy.address}
    )
    client = stack.client
    by_ui, failed = await fail_while_storing(stack, proxy, "Reset in the UI")
    by_cli, _ = await fail_while_storing(stack, proxy, "Retried from the shell")
    assert await listed(client, 'ErrorCode = "store_unavailable" AND ExecutionStatus = "Failed"', 2)
    # Reconcile keeps the uploads of recordings that failed so: a retry needs them.
    report = await ReconcileActivities(stack.catalog, stack.store, client).run(ReconcileInput(min_age_s=0))
    assert report.deleted_keys == []
    assert {key.split("/")[1] for key in await stack.store.list_keys("staging/")} == {by_ui, by_cli}

    await proxy.up()  # the store is back
    handle = client.get_workflow_handle(by_ui)
    history = await handle.fetch_history()
    reset = await client.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=by_ui),
            reason="store is back",
            workflow_task_finish_event_id=storing_task(list(history.events)),
            request_id=str(uuid.uuid4()),
        )
    )
    done = await wait_for_status(stack.api, by_ui, {"complete"}, timeout=60)
    assert "size" not in failed and done["size"] > 0 and done["duration"] >= 1 and "error" not in done
    assert (await stack.api.get(f"/api/v1/recordings/{by_ui}/media")).status_code == 200
    new_run = client.get_workflow_handle(by_ui, run_id=reset.run_id, result_type=RecordingState)
    assert (await new_run.result()).status == "complete"
    assert (await new_run.describe()).status == WorkflowExecutionStatus.COMPLETED

    tool = ops.Ops(catalog=stack.catalog, store=stack.store, client=client)
    result = await tool.retry(by_cli, reason="store is back", wait_s=30)
    assert result["resetPoint"]["step"] == "join the recorded parts and store the file again", result
    assert (await wait_for_status(stack.api, by_cli, {"complete"}, timeout=60))["status"] == "complete"
    assert await stack.store.list_keys("staging/") == []
