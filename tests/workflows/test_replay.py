"""Saved histories of RecordingWorkflow replay against the current code without non-determinism errors.

When a change to the workflow makes one fail, the change needs `workflow.patched` (or a new workflow
type); to add histories, run the end-to-end tests with CALLREC_SAVE_HISTORIES=<dir> and copy files here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from callrec.workflows.recording import RecordingWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_histories_cover_each_ending() -> None:
    before_notifications = {"complete", "failed-start-timeout", "failed-recorder", "failed-invalid-file"}
    with_notifications = {"complete-shared", "complete-auto-shared", "complete-offer-expired", "failed-notified"}
    watching_for_silence = {"complete-with-progress", "aborted-silent"}
    later = {"complete-with-webhooks"}
    endings = ["complete-shared", "complete-offer-expired", "complete-with-webhooks", "complete-with-progress"]
    endings += ["failed-invalid-file", "failed-recorder", "aborted-silent"]
    local_writes = {f"local-writes-{ending}" for ending in endings}  # catalog writes as local activities
    expected = before_notifications | with_notifications | watching_for_silence | later | local_writes
    assert {p.stem for p in HISTORIES} >= expected


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_saved_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=[RecordingWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history)
    assert result.replay_failure is None
