"""The Temporal worker: the recording, reconcile and webhook delivery workflows and their activities."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import httpx
from hypercorn.asyncio import serve
from hypercorn.config import Config
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from callrec import event_loop
from callrec.activities.catalog import CatalogActivities
from callrec.activities.egress import EgressActivities
from callrec.activities.files import FileActivities
from callrec.activities.livekit_egress import LiveKitEgressActivities
from callrec.activities.notify import NotifyActivities
from callrec.activities.pool import PoolActivities
from callrec.activities.reconcile import ReconcileActivities
from callrec.activities.webhooks import webhook_activities
from callrec.domain.recording import EgressStart, EgressStop
from callrec.domain.settings import Settings, local_url
from callrec.metrics.http import worker_metrics_app
from callrec.storage.catalog import Catalog
from callrec.storage.objects import ObjectStore
from callrec.storage.pool import RecorderPool
from callrec.storage.stores import make_store
from callrec.temporal import (
    TemporalConflict,
    TemporalUnavailable,
    WorkflowNotFound,
    connect,
    metrics_runtime,
    temporal_errors,
)
from callrec.workflows.reconcile import ReconcileWorkflow, ensure_schedule
from callrec.workflows.recording import RecordingWorkflow
from callrec.workflows.webhook_endpoint import WebhookEndpointWorkflow
from callrec.workflows.webhooks import WebhookDeliveryWorkflow  # retired: for the runs an upgrade finds

log = logging.getLogger(__name__)


class EgressBackend(Protocol):
    """Who records: a recording server (`EgressActivities`) or LiveKit (`LiveKitEgressActivities`)."""

    async def start_egress(self, request: EgressStart) -> None: ...

    async def stop_egress(self, request: EgressStop) -> None: ...


def recording_activities(
    catalog: Catalog,
    store: ObjectStore,
    egress: EgressBackend | None,
    workdir: Path | None = None,
    egress_name: str = "builtin",
) -> list[Callable[..., Any]]:
    """Every activity RecordingWorkflow calls on this worker's queue (`egress`: None for the built-in recorders,
    whose own activities run on each recorder's queue; `egress_name`: CALLREC_EGRESS, what the metrics say)."""
    projection, notify = CatalogActivities(catalog, egress_name), NotifyActivities(catalog)
    files = FileActivities(store)
    pool = PoolActivities(RecorderPool(catalog), store, workdir)
    egress_calls: list[Callable[..., Any]] = [egress.start_egress, egress.stop_egress] if egress is not None else []
    return [
        projection.project_recording,
        projection.set_call_recording,
        projection.project_with_room,
        *egress_calls,
        pool.assign_recorder,
        pool.release_recorder,
        pool.assemble,
        files.finalize,
        notify.post_chat,
        notify.notify,
        notify.close_offer,
        notify.share_to_chat,
    ]


# callrec's own modules, the workflows' among them, are passed through the sandbox: imported once per worker rather
# than again for every new workflow (with their `workflow.defn` checks and, without bytecode files, a recompile). They
# keep no state at module level. The workflows still run sandboxed, and the replay and workflow tests run them in the
# default sandbox, which re-imports and checks them.
WORKFLOW_RUNNER = SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules("callrec"))


def build_worker(
    client: Client, settings: Settings, catalog: Catalog, store: ObjectStore, http: httpx.AsyncClient
) -> Worker:
    egress: EgressBackend | None = None
    if settings.egress == "livekit":
        egress = LiveKitEgressActivities(settings, catalog)
    elif settings.egress == "talk":
        egress = EgressActivities(
            settings.egress_url, settings.backend_url, settings.require_recording_secret(), http, extended=False
        )
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[RecordingWorkflow, ReconcileWorkflow, WebhookEndpointWorkflow, WebhookDeliveryWorkflow],
        workflow_runner=WORKFLOW_RUNNER,
        activities=[
            *recording_activities(catalog, store, egress, settings.data_dir, settings.egress),
            ReconcileActivities(catalog, store, client, offer_expiry_s=settings.share_offer_expiry_s).reconcile,
            *webhook_activities(http, settings.webhooks, client, settings.task_queue),
        ],
    )


class CannotListen(Exception):
    """The worker's metrics server cannot listen where its settings say; the message names the setting."""


async def serve_metrics(settings: Settings, shutdown: Callable[[], Awaitable[object]]) -> None:
    """The worker's `GET /metrics` on worker_metrics_host:worker_metrics_port until `shutdown`; CannotListen
    when it cannot listen there."""
    config = Config()
    config.bind = [f"{settings.worker_metrics_host}:{settings.worker_metrics_port}"]
    config.errorlog = logging.getLogger("hypercorn.error")
    config.accesslog = None
    try:
        await serve(worker_metrics_app(settings), config, shutdown_trigger=shutdown)
    except OSError as err:
        raise CannotListen(
            f"the worker's metrics cannot listen on {config.bind[0]} ({err.strerror or err}): set "
            "CALLREC_WORKER_METRICS_PORT to a free port, or 0 for none"
        ) from None


async def run(settings: Settings) -> None:
    client = await connect(settings, metrics_runtime(settings))
    catalog = Catalog.from_url(settings.catalog_url)
    store = await make_store(settings)
    try:
        with temporal_errors():
            await ensure_schedule(
                client, settings.task_queue, settings.reconcile_every_s, min_age_s=settings.reconcile_min_age_s
            )
    except (WorkflowNotFound, TemporalUnavailable, TemporalConflict) as err:
        # Recordings do not depend on it: run without the schedule, say so. (One that exists already is no error.)
        log.warning("could not create the reconcile schedule: %s", err)
    async with httpx.AsyncClient(timeout=10) as http:
        worker = build_worker(client, settings, catalog, store, http)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with worker:
            log.info(
                "worker polling task queue %r on Temporal %s (namespace %s); recording with %s",
                settings.task_queue,
                settings.temporal_address,
                settings.temporal_namespace,
                settings.egress,
            )
            waits: list[asyncio.Future[object]] = [asyncio.ensure_future(stop.wait())]
            if settings.worker_metrics_port:
                waits.append(asyncio.ensure_future(serve_metrics(settings, stop.wait)))
                where = local_url(settings.worker_metrics_host, settings.worker_metrics_port)
                log.info("worker metrics at %s/metrics", where)
            if settings.temporal_metrics_port:
                where = local_url(settings.worker_metrics_host, settings.temporal_metrics_port)
                log.info("Temporal SDK metrics at %s/metrics", where)
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            stop.set()
            log.info("worker stopping")
            for done in waits:
                await done  # raises CannotListen if the metrics server could not listen (the worker then stops)
    await catalog.close()


def main(settings: Settings) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        try:
            event_loop.run(run(settings))
        except CannotListen as err:
            raise SystemExit(str(err)) from None
