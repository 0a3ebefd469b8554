"""ReconcileWorkflow: one reconciliation pass (see callrec/activities/reconcile.py), run by a Temporal Schedule.

`ensure_schedule` creates the schedule "callrec-reconcile" (every `every_s`, overlapping runs skipped)
unless it exists already; the worker calls it when it starts.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from temporalio.client import (
        Client,
        Schedule,
        ScheduleActionStartWorkflow,
        ScheduleAlreadyRunningError,
        ScheduleIntervalSpec,
        ScheduleOverlapPolicy,
        SchedulePolicy,
        ScheduleSpec,
    )

    from callrec.activities.reconcile import ReconcileActivities, ReconcileInput, ReconcileReport
    from callrec.workflows.options import execute

SCHEDULE_ID = "callrec-reconcile"


@workflow.defn
class ReconcileWorkflow:
    @workflow.run
    async def run(self, input: ReconcileInput) -> ReconcileReport:
        return await execute(ReconcileActivities.reconcile, input)  # options: options.py


async def ensure_schedule(client: Client, task_queue: str, every_s: float, *, min_age_s: float = 120.0) -> bool:
    """Creates the reconcile schedule; one that exists already is left as it is. Returns whether it was created."""
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            ReconcileWorkflow.run,
            ReconcileInput(min_age_s=min_age_s),
            id=SCHEDULE_ID,
            task_queue=task_queue,
            execution_timeout=timedelta(hours=1),
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=every_s))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    try:
        await client.create_schedule(SCHEDULE_ID, schedule)
    except ScheduleAlreadyRunningError:
        return False
    return True
