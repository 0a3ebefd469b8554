"""`callrec ops list | show | abort | reconcile | retry`: what an operator needs, from a shell.

Readable text by default, `--json` for machines. An unknown recording id, a retry that is refused, or a
Temporal that does not answer exits with status 1 and a message on stderr.

`commands` and `retry` hold the operations (`Ops`), `reset` where a retry resets a run, `history` the
summaries of history events, `output` what is printed, and `cli` the arguments and the exit status.
"""

from callrec.ops.base import QUERY_TIMEOUT, UnknownRecording
from callrec.ops.cli import (
    catalog_missing,
    catalog_unavailable,
    configure,
    execute,
    main,
    run,
    since_ms,
    temporal_unavailable,
)
from callrec.ops.commands import OPERATOR_ABORTED, OPERATOR_ABORTED_CODE, Ops
from callrec.ops.history import summarize_event
from callrec.ops.output import (
    format_abort,
    format_list,
    format_retry,
    format_show,
    iso,
    recording_view,
    workflow_url,
    workflow_view,
)
from callrec.ops.reset import RETRY_REASON, NoResetPoint, ResetPoint, RunEnding, RunHistory, choose_reset_point
from callrec.ops.retry import RetryRefused

__all__ = [
    "OPERATOR_ABORTED",
    "OPERATOR_ABORTED_CODE",
    "QUERY_TIMEOUT",
    "RETRY_REASON",
    "NoResetPoint",
    "Ops",
    "ResetPoint",
    "RetryRefused",
    "RunEnding",
    "RunHistory",
    "UnknownRecording",
    "catalog_missing",
    "catalog_unavailable",
    "choose_reset_point",
    "configure",
    "execute",
    "format_abort",
    "format_list",
    "format_retry",
    "format_show",
    "iso",
    "main",
    "recording_view",
    "run",
    "since_ms",
    "summarize_event",
    "temporal_unavailable",
    "workflow_url",
    "workflow_view",
]
