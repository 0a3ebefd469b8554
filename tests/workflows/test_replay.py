"""Saved histories of RecordingWorkflow replay against the current code without non-determinism errors.

One history per way a recording ends. When a change to the workflow makes one fail: if that change is
deliberate and the workflow was never released, regenerate the histories; otherwise the change needs
`workflow.patched` (or a new workflow type), so that the recordings running at the upgrade still replay.
To regenerate or add histories, run the workflow and end-to-end tests that end a recording that way with
CALLREC_SAVE_HISTORIES=<dir> (the stacks and the time-skipping harness keep the histories of the workflows
that closed) and copy a small one per ending here; the tests each one came from are listed below.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from callrec.workflows.recording import RecordingWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


# ending -> the test that produced its history
ENDINGS = {
    "complete": "e2e/test_talk_notifications.py::test_dismissed_offer_cannot_be_shared_and_the_workflow_ends",
    "complete-shared": "e2e/test_talk_notifications.py::test_stored_recording_is_offered_and_shared_to_the_chat_once",
    "complete-auto-shared": "e2e/test_talk_notifications.py::test_offer_expires_and_auto_share_needs_no_click",
    "complete-offer-expired": "e2e/test_talk_notifications.py::test_offer_expires_and_auto_share_needs_no_click",
    "complete-with-progress": "e2e/test_failures.py::test_the_built_in_recorder_reports_progress_and_is_not_given_up",
    "complete-with-webhooks": "e2e/test_webhook_events.py::test_events_arrive_once_the_endpoint_is_back",
    "limit-reached": "workflows/test_timers.py::test_max_duration_ends_as_limit_reached_with_the_file_stored",
    "failed-egress-unavailable": "workflows/test_timers.py::test_a_recorder_that_cannot_be_reached_fails_the_recording",
    "failed-start-timeout": "e2e/test_failures.py::test_recorder_that_never_reports_started_gives_503_and_failed",
    "failed-recorder": "e2e/test_failures.py::test_recorder_failure_fails_the_recording_and_a_new_one_can_start",
    "failed-recorder-lost": "e2e/test_failures.py::test_a_recorder_that_lost_the_recording_fails_it_at_once",
    "failed-upload-timeout": "workflows/test_timers.py::test_missing_upload_after_stop_fails_the_recording",
    "failed-invalid-file": "e2e/test_failures.py::test_a_cut_off_mp4_fails_with_the_reason",
    "aborted-nothing-recorded": "workflows/test_timers.py::test_call_ending_before_the_recorder_started_aborts",
    "aborted-silent": "e2e/test_failures.py::test_a_recorder_that_falls_silent_is_aborted",
    "aborted-no-worker": "workflows/test_timers.py::test_a_start_the_api_gave_up_on_never_reaches_the_recorder",
    "complete-late-upload": "workflows/test_timers.py::"
    "test_a_late_upload_after_the_upload_timeout_still_completes_the_recording",
    "failed-upload-timeout-late-window": "workflows/test_timers.py::test_the_late_upload_window_closes",
    "failed-recorder-before-start": "workflows/test_timers.py::"
    "test_a_recorder_that_fails_before_it_started_is_stopped_all_the_same",
    "complete-pool-taken-over": "e2e/test_recorder_pool.py::"
    "test_a_recorder_killed_mid_recording_is_replaced_and_the_file_holds_both_sides_of_the_gap",
    "failed-pool-recorder-lost": "e2e/test_recorder_pool.py::"
    "test_with_no_recorder_to_take_over_the_recording_fails_with_what_was_stored",
    # with the room's Talk status (the `talk-room-status` patch)
    "complete-talk-room-status": "e2e/test_talk_notifications.py::test_offer_expires_and_auto_share_needs_no_click",
    "complete-uploaded": "e2e/test_talk_notifications.py::test_retried_upload_is_stored_once",
    "aborted-stopped-while-starting": "e2e/test_talk_status_flow.py::"
    "test_a_refused_start_changes_nothing_and_callbacks_set_the_status_whatever_it_was",
    "failed-start-refused": "e2e/test_talk_status_flow.py::"
    "test_a_refused_start_changes_nothing_and_callbacks_set_the_status_whatever_it_was",
    # closed as the recording ended (`close-as-outcome`: failed/aborted close Failed) and at once once stored
    # (`offer-in-catalog`); an operator's Cancel, and a Reset after the store was down (each run)
    "complete-closes-when-stored": "e2e/test_talk_notifications.py::"
    "test_stored_recording_is_offered_and_shared_to_the_chat_once",
    "failed-start-timeout-closes-failed": "workflows/test_timers.py::"
    "test_start_timeout_fails_the_recording_and_stops_egress",
    "aborted-cancelled-kept": "e2e/test_operator_recovery.py::"
    "test_cancel_in_the_ui_stops_the_recorder_and_keeps_what_was_recorded",
    "aborted-cancelled-before-start": "e2e/test_operator_recovery.py::"
    "test_cancel_before_the_recorder_started_stops_it_and_records_nothing",
    "failed-store-unavailable": "e2e/test_operator_recovery.py::"
    "test_a_recording_that_failed_while_storing_completes_after_a_reset_once_the_store_is_back",
    "complete-after-reset": "e2e/test_operator_recovery.py::"
    "test_a_recording_that_failed_while_storing_completes_after_a_reset_once_the_store_is_back",
    # the notification and the share to the chat as local activities (`notify-local`)
    "complete-notify-local": "e2e/test_talk_notifications.py::"
    "test_stored_recording_is_offered_and_shared_to_the_chat_once",
    "complete-auto-shared-notify-local": "e2e/test_talk_notifications.py::"
    "test_offer_expires_and_auto_share_needs_no_click",
    # started by update-with-start (the start's update in the first workflow task), the terminal status and the
    # room's Talk status in one local activity (`project-with-room`)
    "complete-project-with-room": "e2e/test_talk_notifications.py::"
    "test_stored_recording_is_offered_and_shared_to_the_chat_once",
    "failed-recorder-project-with-room": "e2e/test_failures.py::"
    "test_recorder_failure_fails_the_recording_and_a_new_one_can_start",
    # a recording server's start as a local activity (`start-egress-local`): taken, and given up after its attempts
    "complete-start-egress-local": "e2e/test_talk_notifications.py::"
    "test_stored_recording_is_offered_and_shared_to_the_chat_once",
    "failed-egress-unavailable-start-egress-local": "ops/test_ops.py::"
    "test_retry_asks_a_recording_server_to_start_again",
    # a second stop in the workflow task of the first is sent to the recorder again (`stop-again-before-ending`)
    "complete-stopped-twice-in-one-task": "workflows/test_timers.py::"
    "test_a_stop_asked_twice_in_one_workflow_task_reaches_the_recorder_twice",
}


def test_histories_cover_each_ending() -> None:
    assert {p.stem for p in HISTORIES} == set(ENDINGS)


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_saved_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=[RecordingWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history)
    assert result.replay_failure is None
