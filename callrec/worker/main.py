"""The Temporal worker: the recording, reconcile and webhook delivery workflows and their activities."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import httpx
from temporalio.client import Client
from temporalio.worker import Worker

from callrec.activities.catalog import CatalogActivities
from callrec.activities.egress import EgressActivities
from callrec.activities.files import FileActivities
from callrec.activities.livekit_egress import LiveKitEgressActivities
from callrec.activities.notify import NotifyActivities
from callrec.activities.pool import PoolActivities
from callrec.activities.reconcile import ReconcileActivities
from callrec.activities.webhooks import webhook_activities
from callrec.domain.recording import EgressStart, EgressStop
from callrec.domain.settings import Settings
from callrec.storage.catalog import Catalog
from callrec.storage.objects import ObjectStore
from callrec.storage.pool import RecorderPool
from callrec.storage.stores import make_store
from callrec.temporal import TemporalConflict, TemporalUnavailable, WorkflowNotFound, connect, temporal_errors
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
    catalog: Catalog, store: ObjectStore, egress: EgressBackend | None, workdir: Path | None = None
) -> list[Callable[..., Any]]:
    """Every activity RecordingWorkflow calls on this worker's queue (`egress`: None for the built-in recorders,
    whose own activities run on each recorder's queue)."""
    projection, files, notify = CatalogActivities(catalog), FileActivities(store), NotifyActivities(catalog)
    pool = PoolActivities(RecorderPool(catalog), store, workdir)
    egress_calls: list[Callable[..., Any]] = [egress.start_egress, egress.stop_egress] if egress is not None else []
    return [
        projection.project_recording,
        projection.set_call_recording,
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
        activities=[
            *recording_activities(catalog, store, egress, settings.data_dir),
            ReconcileActivities(catalog, store, client).reconcile,
            *webhook_activities(http, settings.webhooks, client, settings.task_queue),
        ],
    )


async def run(settings: Settings) -> None:
    client = await connect(settings)
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
            await stop.wait()
            log.info("worker stopping")
    await catalog.close()


def main(settings: Settings) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(settings))
