"""How the workflows run each activity: one table, keyed by the activity, and `execute`, which looks it up.

Every activity has a start-to-close timeout and a retry policy that names its non-retryable errors. Local
activities run inside the workflow task, with no round trip through the Temporal server: the catalog
projection, the chat messages and (since the `notify-local` patch) the notifications, the share to the chat and the
offer's close: short idempotent database writes (numbered projection, dedupe key); and (since the
`start-egress-local` patch) a Talk recording server's start (`START_EGRESS_LOCAL`, chosen by the workflow): one HTTP
request, which the recording server answers at once, and which it takes again harmlessly when a lost workflow task
sends it twice. LiveKit's start stays an activity: a retry of it looks for the egress an earlier attempt started,
which only a regular activity's attempt count tells. The stop stays an activity too: `callrec ops retry` of an
upload timeout resets to the workflow task after it, which then waits for the upload again without stopping the
recorder a second time.

(`deliver_webhook` is not here: the webhook delivery workflows give it their own retry schedule.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from callrec.activities.catalog import CatalogActivities
    from callrec.activities.egress import EgressActivities
    from callrec.activities.files import FileActivities
    from callrec.activities.notify import NotifyActivities
    from callrec.activities.pool import PoolActivities
    from callrec.activities.reconcile import ReconcileActivities
    from callrec.activities.webhooks import WebhookActivities

ArgT = TypeVar("ArgT")
ResultT = TypeVar("ResultT")


@dataclass(frozen=True)
class ActivityOptions:
    start_to_close: timedelta
    retry: RetryPolicy
    heartbeat: timedelta | None = None  # regular activities only
    local: bool = False


# The catalog and the object store come back eventually: retry for as long as it takes.
DURABLE = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
# Talk's backend tries a recording server three times; any answer but 5xx is final.
EGRESS_START = RetryPolicy(maximum_attempts=3, non_retryable_error_types=["EgressRejected"])
EGRESS_STOP = RetryPolicy(maximum_attempts=5, non_retryable_error_types=["EgressRejected", "EgressNotFound"])
# The stop sent after a start given up (it may have reached a recorder that then never answered): best effort, and
# brief, since the recording's failure waits for it.
EGRESS_GIVE_UP = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_attempts=3,
    non_retryable_error_types=["EgressRejected", "EgressNotFound"],
)
# A file that is not a playable recording stays so; the store and the catalog come back.
FINALIZE = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=["InvalidRecordingFile"],
)
# Parts that hold no usable media stay so; the store comes back.
ASSEMBLE = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=["NothingRecorded"],
)
# The catalog, the store or Temporal may be down for a while: back off, and leave the rest to the next run.
RECONCILE = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
    maximum_attempts=6,
)

SECONDS_15 = timedelta(seconds=15)
SECONDS_30 = timedelta(seconds=30)
WRITE = ActivityOptions(SECONDS_30, DURABLE, local=True)  # a catalog write, retried until it lands
DURABLE_CALL = ActivityOptions(SECONDS_30, DURABLE)

ACTIVITY_OPTIONS: dict[Callable[..., Any], ActivityOptions] = {
    # egress.py
    EgressActivities.start_egress: ActivityOptions(SECONDS_15, EGRESS_START),
    EgressActivities.stop_egress: ActivityOptions(SECONDS_15, EGRESS_STOP),
    # files.py: it beats every 5 s, so a dead worker is noticed soon
    FileActivities.finalize: ActivityOptions(timedelta(hours=1), FINALIZE, heartbeat=timedelta(seconds=20)),
    # catalog.py
    CatalogActivities.project_recording: WRITE,
    CatalogActivities.set_call_recording: WRITE,
    CatalogActivities.project_with_room: WRITE,
    # pool.py: admission and release are catalog writes; joining the parts reads and writes the whole file
    PoolActivities.assign_recorder: DURABLE_CALL,
    PoolActivities.release_recorder: DURABLE_CALL,
    PoolActivities.assemble: ActivityOptions(timedelta(hours=1), ASSEMBLE, heartbeat=timedelta(seconds=20)),
    # notify.py
    NotifyActivities.post_chat: WRITE,
    NotifyActivities.notify: DURABLE_CALL,
    NotifyActivities.close_offer: DURABLE_CALL,
    NotifyActivities.share_to_chat: DURABLE_CALL,
    # webhooks.py: hands the event to its endpoints' delivery workflows (delivery itself has its own schedule)
    WebhookActivities.emit_webhook: DURABLE_CALL,
    # reconcile.py
    ReconcileActivities.reconcile: ActivityOptions(timedelta(minutes=30), RECONCILE, heartbeat=timedelta(minutes=1)),
}


GIVE_UP_STOP = ActivityOptions(SECONDS_15, EGRESS_GIVE_UP)  # stop_egress after a start given up

# The patch that runs these as local activities (catalog writes with a dedupe key, as the chat messages): no activity
# task and no workflow task of their own; histories from before scheduled them with the options in the table.
NOTIFY_LOCAL = "notify-local"
LOCAL_SINCE_NOTIFY_LOCAL: frozenset[Callable[..., Any]] = frozenset(
    {NotifyActivities.notify, NotifyActivities.share_to_chat, NotifyActivities.close_offer}
)


# The patch that runs a Talk recording server's start as a local activity: its request goes out in the workflow task
# that starts the recording, and the `started` signal is handled in the next one: one workflow task and one activity
# task fewer before the start returns (POST /recordings: 65-70 -> 50-52 ms median in the bench's stack). Its retry
# policy and timeout stay. Histories from before scheduled it as an activity.
START_EGRESS_LOCAL_PATCH = "start-egress-local"
START_EGRESS_LOCAL = ActivityOptions(SECONDS_15, EGRESS_START, local=True)


async def execute(
    activity: Callable[[Any, ArgT], Awaitable[ResultT]],
    arg: ArgT,
    options: ActivityOptions | None = None,
    *,
    summary: str | None = None,
    give_up_after: timedelta | None = None,
) -> ResultT:
    """Runs `activity` (a method of an activities class) from a workflow with its options from the table (or
    `options`, for a call that needs others); `summary`: what the Temporal UI shows for the call; `give_up_after`:
    a schedule-to-close timeout over all its attempts (regular activities only)."""
    if options is None and activity in LOCAL_SINCE_NOTIFY_LOCAL and workflow.patched(NOTIFY_LOCAL):
        options = WRITE
    options = options or ACTIVITY_OPTIONS[activity]
    if options.local:  # its last failure comes as it is (an ApplicationError, a TimeoutError), not an ActivityError
        return await workflow.execute_local_activity_method(
            activity, arg, start_to_close_timeout=options.start_to_close, retry_policy=options.retry, summary=summary
        )
    return await workflow.execute_activity_method(
        activity,
        arg,
        start_to_close_timeout=options.start_to_close,
        heartbeat_timeout=options.heartbeat,
        schedule_to_close_timeout=give_up_after,
        retry_policy=options.retry,
        summary=summary,
    )


def last_failure(err: BaseException) -> str:
    """The innermost failure's message: a timeout's cause is its last attempt's error."""
    message = str(err)
    cause: BaseException | None = err
    while isinstance(cause, FailureError):
        if cause.message:
            message = cause.message
        cause = cause.cause
    return message
