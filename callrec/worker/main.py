"""The Temporal worker: RecordingWorkflow and its activities on the task queue."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import httpx
from temporalio.client import Client
from temporalio.worker import Worker

from callrec.activities.catalog import CatalogActivities
from callrec.activities.egress import EgressActivities
from callrec.activities.files import FileActivities
from callrec.domain.settings import Settings
from callrec.storage.catalog import Catalog
from callrec.storage.objects import ObjectStore
from callrec.storage.stores import make_store
from callrec.temporal import connect
from callrec.workflows.recording import RecordingWorkflow


def build_worker(
    client: Client, settings: Settings, catalog: Catalog, store: ObjectStore, http: httpx.AsyncClient
) -> Worker:
    catalog_acts = CatalogActivities(catalog)
    egress = EgressActivities(settings.recorder_url, settings.api_url, settings.require_recording_secret(), http)
    files = FileActivities(store)
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[RecordingWorkflow],
        activities=[catalog_acts.project_recording, egress.start_egress, egress.stop_egress, files.finalize],
    )


async def run(settings: Settings) -> None:
    client = await connect(settings)
    catalog = Catalog.from_url(settings.catalog_url)
    store = await make_store(settings)
    async with httpx.AsyncClient(timeout=10) as http:
        worker = build_worker(client, settings, catalog, store, http)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with worker:
            await stop.wait()
    await catalog.close()


def main(settings: Settings) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(settings))
