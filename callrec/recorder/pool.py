"""A recorder of the pool: registers itself, and records on its own Temporal task queue.

Each recorder runs a worker on `callrec-recorder-<id>` (the worker-specific task queue pattern): a recording's
`record_part` activity runs on the recorder that holds its media, for as long as it records, heartbeating its
progress (segments, bytes, media seconds) every `HEARTBEAT_EVERY_S`. When the recorder dies, the heartbeats stop,
Temporal times the activity out after the workflow's heartbeat timeout, and the workflow continues the recording
as a new part on another recorder. `stop_part` asks it to finish: the activity then returns once the last segment
is in the object store.

It registers (id, address, task queue, capacity, state, rooms with publishers) with the API every
`REGISTER_EVERY_S` by a signed `recorder` callback; the API keeps the pool in the catalog. Draining
(`SIGTERM`, or `callrec recorder drain`): it registers as `draining`, refuses new parts, and stops once its
recordings are over.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from datetime import timedelta

import httpx
from quart import Quart, Response, jsonify, request
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from callrec.domain import signing
from callrec.domain.pool import (
    RECORD_PART,
    REGISTER_EVERY_S,
    STOP_PART,
    PartResult,
    RecorderReport,
    RecorderState,
    RecordInput,
    RecordStop,
    default_capacity,
    part_prefix,
    task_queue_of,
)
from callrec.domain.settings import Settings
from callrec.recorder.protocol import Refused
from callrec.recorder.service import ATTEMPTS, OCS_BASE, Actor, Part, PartFailed, Recorder, StartBody
from callrec.recorder.shipping import SegmentShipper
from callrec.recorder.whip import Whip
from callrec.storage.objects import ObjectStore

log = logging.getLogger(__name__)
HEARTBEAT_EVERY_S = 2.0


class RecorderNode:
    def __init__(self, settings: Settings, recorder: Recorder, whip: Whip | None, store: ObjectStore) -> None:
        self.id = settings.recorder_id
        self.task_queue = task_queue_of(self.id)
        self.url = settings.recorder_url.rstrip("/")
        self.capacity = settings.recorder_capacity or default_capacity(os.cpu_count() or 1)
        self.segment_s = settings.segment_s
        self.recorder = recorder
        self.whip = whip
        self.store = store
        # (recording, workflow run) that asked to stop: a part of that run that starts late (its task was queued)
        # records nothing. Kept an hour.
        self.stopped_runs: dict[tuple[str, str], float] = {}
        self.draining = asyncio.Event()
        self.drained = asyncio.Event()  # draining and nothing left to record

    # ------------------------------------------------------------------ activities (on this recorder's queue)

    @activity.defn(name=RECORD_PART)
    async def record_part(self, input: RecordInput) -> PartResult:
        run = (input.recording_id, activity.info().workflow_run_id or "run")
        if run in self.stopped_runs:
            return PartResult(segments=0, bytes=0, media_s=0.0)  # stopped before it began
        if self.draining.is_set():
            raise ApplicationError(f"recorder {self.id} is draining", type="RecorderDraining", non_retryable=True)
        backend = self.recorder.backends.pick(input.backend)
        # the run's id in the key: a run started over by a reset records its own parts, never over an older run's
        prefix = part_prefix(input.recording_id, input.part, run[1])
        path = self.recorder.part_path(input.recording_id, input.part, audio_only=input.audio_only)
        shipper = SegmentShipper(
            self.store, f"{prefix}chunk-", path, every_s=self.segment_s, first_after_s=min(2.0, self.segment_s)
        )
        part = Part(
            number=input.part,
            shipper=shipper,
            manifest_key=f"{prefix}part.json",
            media_before_s=input.media_before_s,
            bytes_before=input.bytes_before,
        )
        body = StartBody(
            status=2 if input.audio_only else 1,
            owner=input.owner,
            actor=Actor(type="users", id=input.owner or "callrec"),  # who started it, as Talk's `started` names them
            recordingId=input.recording_id,
            layout=input.layout,
            encoding=input.encoding,
            participants=input.participants,
        )
        try:
            session = await self.recorder.start_part(input.room_id, backend, body, part)
        except Refused as refused:
            raise ApplicationError(refused.message, type="RecorderRefused", non_retryable=True) from None
        log.info("recording %s part %d on %s", input.recording_id, input.part, self.id)
        if run in self.stopped_runs:  # the stop came while an older part was finishing
            await self.recorder.stop(session)
        try:
            while not part.result.done():
                shipped = part.shipper.shipped
                activity.heartbeat({"segments": shipped.segments, "bytes": shipped.bytes, "recorder": self.id})
                await asyncio.wait([part.result], timeout=HEARTBEAT_EVERY_S)
            return part.result.result()
        except PartFailed as failed:
            raise ApplicationError(str(failed), type="PartFailed", non_retryable=True) from None
        except asyncio.CancelledError:
            # The workflow gave up on this part: finish it (what was recorded is shipped), then report cancelled.
            if self.recorder.sessions.get(input.recording_id) is session:
                await self.recorder.stop(session)
            with contextlib.suppress(Exception):
                await asyncio.shield(part.result)
            raise
        finally:
            self._check_drained()

    @activity.defn(name=STOP_PART)
    async def stop_part(self, input: RecordStop) -> None:
        now = time.monotonic()
        self.stopped_runs = {run: at for run, at in self.stopped_runs.items() if now - at < 3600}
        self.stopped_runs[(input.recording_id, activity.info().workflow_run_id or "run")] = now
        session = self.recorder.sessions.get(input.recording_id)
        if session is not None and session.part is not None:
            await self.recorder.stop(session)

    # ------------------------------------------------------------------ registration and draining

    def report(self) -> RecorderReport:
        rooms = sorted({s.room_id for s in self.whip.sessions.values()}) if self.whip is not None else []
        return RecorderReport(
            id=self.id,
            url=self.url,
            taskQueue=self.task_queue,
            capacity=self.capacity,
            state=RecorderState.DRAINING if self.draining.is_set() else RecorderState.ACTIVE,
            recordings=len(self.recorder.sessions),
            rooms=rooms[:1000],
            sentAt=int(time.time() * 1000),
        )

    async def register(self) -> bool:
        body = json.dumps({"type": "recorder", "recorder": self.report().model_dump(mode="json")}).encode()
        backend = self.recorder.backends.pick(None)
        response, _ = await self.recorder._post(f"{backend}{OCS_BASE}/recording/backend", body)
        if response is None:
            log.warning("registration with %s: no answer after %d attempts (is the API running?)", backend, ATTEMPTS)
            return False
        if response.status_code != 200:
            log.warning("registration with %s refused: %s %s", backend, response.status_code, response.text[:200])
            return False
        return True

    async def register_until(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(Exception):
                await self.register()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), REGISTER_EVERY_S)

    def drain(self) -> None:
        if not self.draining.is_set():
            log.info("recorder %s draining: no new recordings; %d to finish", self.id, len(self.recorder.sessions))
            self.draining.set()
            self.recorder.spawn(self.register())
        self._check_drained()

    def _check_drained(self) -> None:
        if self.draining.is_set() and not self.recorder.sessions and not self.recorder.stopping:
            self.drained.set()

    def worker(self, client: Client) -> Worker:
        return Worker(
            client,
            task_queue=self.task_queue,
            activities=[self.record_part, self.stop_part],
            max_concurrent_activities=1000,
            graceful_shutdown_timeout=timedelta(seconds=30),
        )

    async def run(self, client: Client, stop: asyncio.Event) -> None:
        """Until `stop`: the worker on this recorder's queue, and the registration."""
        stopped = asyncio.Event()
        registering = asyncio.ensure_future(self.register_until(stopped))
        try:
            async with self.worker(client):
                await stop.wait()
        finally:
            stopped.set()
            await registering

    async def until_drained(self) -> None:
        """A shutdown trigger: SIGTERM / SIGINT or `callrec recorder drain` drains, then the recordings end."""
        signalled = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, signalled.set)
        while not (signalled.is_set() or self.draining.is_set()):
            await asyncio.sleep(0.2)
        self.drain()
        while not self.drained.is_set():
            await asyncio.sleep(0.5)
            self._check_drained()
        log.info("recorder %s drained: stopping", self.id)


def add_drain_route(app: Quart, node: RecorderNode) -> None:
    """`POST /drain`, signed as the recorder protocol (random + checksum over the empty body)."""

    @app.post("/drain")
    async def drain() -> tuple[Response, int]:
        raw: bytes = await request.body
        random = request.headers.get(signing.RANDOM_HEADER)
        if not signing.verify(node.recorder.secret, random, request.headers.get(signing.CHECKSUM_HEADER), raw):
            return jsonify({"error": "checksum"}), 403
        if not node.recorder.replays.first_use(random or ""):
            return jsonify({"error": "replayed"}), 403
        node.drain()
        return jsonify({"state": "draining", "recordings": len(node.recorder.sessions)}), 200


async def request_drain(url: str, secret: str) -> dict[str, object]:
    """What `callrec recorder drain` does."""
    headers = signing.signed_headers(secret, b"")
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(f"{url.rstrip('/')}/drain", headers=headers)
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}: {response.text[:200]}")
    answer: dict[str, object] = response.json()
    return answer
