"""Saved histories of the webhook delivery workflows replay against the current code.

WebhookEndpointWorkflow's, from the runs of tests/integration/test_webhooks.py (regenerate them with
CALLREC_SAVE_HISTORIES=<dir>, which keeps every run of each test's task queue, and copy the ones named below);
and one of the retired WebhookDeliveryWorkflow, which nothing starts any more but whose runs an upgrade finds
still running must finish.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from callrec.workflows.webhook_endpoint import WebhookEndpointWorkflow
from callrec.workflows.webhooks import WebhookDeliveryWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories" / "webhooks").glob("*.json"))

# history -> the test that produced it
SOURCES = {
    "endpoint-retried-emit": "integration/test_webhooks.py::test_emit_retried_delivers_once",
    "endpoint-rejected-then-delivered": "integration/test_webhooks.py::"
    "test_400_is_final_and_other_endpoints_and_events_still_go",
    "endpoint-continued-as-new": "integration/test_webhooks.py::"
    "test_continue_as_new_carries_the_queue_and_the_keys_taken (its first run)",
    "endpoint-continued-run": "integration/test_webhooks.py::"
    "test_continue_as_new_carries_the_queue_and_the_keys_taken (the run it continued as)",
    "endpoint-in-flight-handed-on": "integration/test_webhooks.py::"
    "test_an_endpoint_down_for_long_hands_its_deliveries_in_flight_to_the_next_run (its first run)",
    "delivery-retired": "integration/test_webhooks.py::test_the_retired_delivery_workflow_still_delivers",
}


def test_histories_are_the_listed_ones() -> None:
    assert {p.stem for p in HISTORIES} == set(SOURCES)


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_saved_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(
        workflows=[WebhookEndpointWorkflow, WebhookDeliveryWorkflow], data_converter=pydantic_data_converter
    )
    result = await replayer.replay_workflow(history)
    assert result.replay_failure is None
