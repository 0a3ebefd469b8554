"""What every `callrec ops` command works with: the catalog, the object store, and the recordings' workflows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.service import RPCError

from callrec.domain.recording import RecordingState
from callrec.storage.catalog import Catalog
from callrec.storage.objects import ObjectStore
from callrec.temporal import (
    TemporalConflict,
    TemporalUnavailable,
    WorkflowNotFound,
    temporal_errors,
    workflow_pollers,
)
from callrec.workflows.recording import RecordingWorkflow

QUERY_TIMEOUT = timedelta(seconds=5)


class UnknownRecording(Exception):
    def __init__(self, recording_id: str) -> None:
        super().__init__(recording_id)
        self.recording_id = recording_id

    def __str__(self) -> str:
        return f"unknown recording {self.recording_id!r}: no catalog row and no workflow"


@dataclass
class OpsBase:
    catalog: Catalog
    store: ObjectStore
    client: Client
    offer_expiry_s: float | None = None  # `reconcile` closes share-to-chat offers older than this (None: it does not)

    def _handle(self, recording_id: str) -> WorkflowHandle[Any, RecordingState]:
        return self.client.get_workflow_handle_for(RecordingWorkflow.run, recording_id)

    async def _describe(self, recording_id: str) -> WorkflowExecutionDescription | None:
        """The recording's workflow, or None if it does not exist."""
        try:
            with temporal_errors(recording_id):
                return await self._handle(recording_id).describe()
        except WorkflowNotFound:
            return None

    async def _current(self, recording_id: str, task_queue: str) -> tuple[RecordingState | None, str | None]:
        """The running workflow's state, or why it could not be asked: at once when no worker polls its task queue
        (a query would wait QUERY_TIMEOUT for nobody)."""
        try:
            polled = bool(await workflow_pollers(self.client, task_queue, QUERY_TIMEOUT.total_seconds()))
        except RPCError:
            polled = True  # the query says what went wrong
        if not polled:
            return None, f"not asked: no worker polls its task queue {task_queue!r}"
        return await self._query(self._handle(recording_id))

    async def _query(self, handle: WorkflowHandle[Any, RecordingState]) -> tuple[RecordingState | None, str | None]:
        try:
            with temporal_errors():  # no `what`: the error says Temporal's own message
                state = await handle.query(RecordingWorkflow.current, rpc_timeout=QUERY_TIMEOUT)
        except (
            WorkflowNotFound,
            TemporalUnavailable,
            TemporalConflict,
            WorkflowQueryFailedError,
            WorkflowQueryRejectedError,
        ) as err:
            return None, f"query failed: {err}"
        return state, None
