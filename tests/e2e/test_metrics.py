"""Prometheus `/metrics` of the API, the worker and the recorder, and the Temporal SDK's, after real recordings.

Every part runs in this process (the `stacks` fixture), but each serves its own registry: what the API's
`/metrics` shows is what the API did. Counters are process-wide, so each check compares with the value before.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from bench.common import free_port
from callrec import metrics
from callrec.temporal import connect, metrics_runtime
from callrec.worker.main import serve_metrics
from tests.conftest import SECRET, Stack, StackFactory, make_settings
from tests.e2e.test_failures import start_with_scripted_recorder
from tests.helpers import create_room, join, mp4_bytes, record, upload, wait_for_status
from tests.recording_server import ScriptedRecordingServer

TOKEN = "metrics-token-0123456789abcdef0123456789"
# The Temporal SDK series the Grafana dashboard shows (tests/unit/test_deployment_files.py checks it uses no other).
TEMPORAL_SDK_SERIES = {
    "temporal_request_total",
    "temporal_num_pollers",
    "temporal_worker_task_slots_available",
    "temporal_workflow_task_schedule_to_start_latency_bucket",
    "temporal_activity_schedule_to_start_latency_bucket",
    "temporal_activity_execution_latency_bucket",
}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def samples(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def served(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def scrape(url: str) -> Samples:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    return samples(response.text)


async def complete_talk_recording(stack: Stack, scripted: ScriptedRecordingServer, tmp_path: Path) -> int:
    """A recording server that starts, stops and uploads a valid file; the file's size."""
    room_id = await create_room(stack.api)
    await join(stack.api, room_id, "Alice")
    recording_id = await start_with_scripted_recorder(stack.api, scripted, room_id)
    assert (await stack.api.post(f"/api/v1/recordings/{recording_id}/stop")).status_code == 202
    await scripted.wait_for("stop")
    video = mp4_bytes(tmp_path)
    assert (await upload(stack.api, SECRET, room_id, "call.mp4", video)).status_code == 200
    assert (await wait_for_status(stack.api, recording_id, {"complete", "failed"}))["status"] == "complete"
    return len(video)


async def test_metrics_count_recordings_requests_uploads_and_encoding(
    stacks: StackFactory, scripted: ScriptedRecordingServer, tmp_path: Path
) -> None:
    ended = "callrec_recordings_ended_total"
    before = {
        "builtin": value(metrics.WORKER, ended, status="complete", error_code="", egress="builtin"),
        "talk": value(metrics.WORKER, ended, status="complete", error_code="", egress="talk"),
        "timeout": value(metrics.WORKER, ended, status="failed", error_code="start_timeout", egress="talk"),
        "started": value(metrics.WORKER, "callrec_recordings_started_total", egress="talk"),
        "stored": value(metrics.API, "callrec_upload_bytes_total", outcome="stored"),
        "uploads": value(metrics.API, "callrec_upload_seconds_count", outcome="stored"),
        "start_201": value(metrics.API, "callrec_recording_start_seconds_count", front_door="meet", status="201"),
        "start_503": value(metrics.API, "callrec_recording_start_seconds_count", front_door="meet", status="503"),
        "validate": value(metrics.WORKER, "callrec_finalize_seconds_count", step="validate"),
        "lag": value(metrics.RECORDER, "callrec_recorder_encode_lag_seconds_count"),
    }

    # The built-in recorder records one call; a Talk recording server records one and never starts another.
    builtin = await stacks.start(metrics_token=TOKEN)
    room_id = await create_room(builtin.api)
    await join(builtin.api, room_id, "Alice", "Bob")
    recording = await record(builtin.api, room_id, seconds=1.0)
    assert recording["status"] == "complete", recording
    assert (await builtin.api.get(f"/api/v1/recordings/{recording['recordingId']}")).status_code == 200
    media = await builtin.api.get(f"/api/v1/recordings/{recording['recordingId']}/media")  # a file sent by pathsend
    assert media.status_code == 200 and len(media.content) == int(media.headers["content-length"]) > 0

    talk_url = f"http://127.0.0.1:{scripted.port}"
    talk = await stacks.start(
        recorder=False, egress="talk", talk_recording_server=talk_url, start_timeout_s=3, metrics_token=TOKEN
    )
    size = await complete_talk_recording(talk, scripted, tmp_path)
    failing_room = await create_room(talk.api)
    await join(talk.api, failing_room, "Alice")
    refused = await talk.api.post("/api/v1/recordings", json={"roomId": failing_room})
    assert refused.status_code == 503, refused.text
    listed = (await talk.api.get("/api/v1/recordings", params={"roomId": failing_room})).json()["recordings"]
    assert [(r["status"], r["error"]) for r in listed] == [("failed", "start_timeout")]

    # Only a caller with the token reads them.
    async with httpx.AsyncClient(base_url=str(builtin.api.base_url)) as anonymous:
        assert (await anonymous.get("/metrics")).status_code == 401
        assert (await anonymous.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 401

    # The API: starts timed by answer, uploads, HTTP requests by route template, recordings in progress.
    api_text = (await builtin.api.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})).text
    assert recording["recordingId"] not in api_text and room_id not in api_text  # no ids in label values
    api = samples(api_text)
    start = "callrec_recording_start_seconds_count"
    assert served(api, start, front_door="meet", status="201") >= before["start_201"] + 2
    assert served(api, start, front_door="meet", status="503") >= before["start_503"] + 1
    assert served(api, "callrec_upload_bytes_total", outcome="stored") >= before["stored"] + size
    assert served(api, "callrec_upload_seconds_count", outcome="stored") >= before["uploads"] + 1
    by_id = {"route": "/api/v1/recordings/<recording_id>", "method": "GET", "status": "200"}
    assert served(api, "callrec_http_requests_total", **by_id) >= 1
    media_route = {"route": "/api/v1/recordings/<recording_id>/media", "method": "GET", "status": "200"}
    assert served(api, "callrec_http_requests_total", **media_route) >= 1
    timed = {"route": "/api/v1/recordings/<recording_id>", "method": "GET"}
    assert served(api, "callrec_http_request_duration_seconds_count", **timed) >= 1
    assert served(api, "callrec_http_request_duration_seconds_bucket", **timed, le="+Inf") >= 1
    store_route = "/ocs/v2.php/apps/spreed/api/v1/recording/<token>/store"
    assert served(api, "callrec_http_requests_total", route=store_route, method="POST", status="200") >= 1
    assert ("callrec_recordings_in_progress", frozenset({("status", "active")})) in api
    routes = {dict(labels).get("route") for name, labels in api if name == "callrec_http_requests_total"}
    assert all(route == "unmatched" or route.startswith("/") and "--" not in route for route in routes), routes

    # The worker: outcomes by status, errorCode and egress, counted once each; storing timed.
    stop = asyncio.Event()
    worker_port = free_port()
    worker_settings = builtin.settings.model_copy(update={"worker_metrics_port": worker_port})
    serving = asyncio.create_task(serve_metrics(worker_settings, stop.wait))
    try:
        worker = await scrape_when_up(f"http://127.0.0.1:{worker_port}/metrics")
    finally:
        stop.set()
        await serving
    assert served(worker, ended, status="complete", error_code="", egress="builtin") == before["builtin"] + 1
    assert served(worker, ended, status="complete", error_code="", egress="talk") == before["talk"] + 1
    assert served(worker, ended, status="failed", error_code="start_timeout", egress="talk") == before["timeout"] + 1
    assert served(worker, "callrec_recordings_started_total", egress="talk") == before["started"] + 1
    assert served(worker, "callrec_finalize_seconds_count", step="validate") >= before["validate"] + 2
    assert ("callrec_webhook_deliveries_total", frozenset({("outcome", "rejected")})) in worker

    # The recorder: its own HTTP routes, encoding lag sampled while it recorded, dropped frames.
    recorder = await scrape(f"http://127.0.0.1:{builtin.settings.recorder_port}/metrics")
    assert served(recorder, "callrec_recorder_encode_lag_seconds_count") > before["lag"]
    assert ("callrec_recorder_dropped_frames_total", frozenset({("reason", "behind")})) in recorder
    assert served(recorder, "callrec_http_requests_total", route="/health", method="GET", status="200") >= 1
    assert not any(name.startswith("callrec_recordings_") for name, _ in recorder)  # the worker's, not its own


async def scrape_when_up(url: str) -> Samples:
    for _ in range(100):
        try:
            return await scrape(url)
        except httpx.ConnectError:
            await asyncio.sleep(0.05)
    raise AssertionError(f"{url} did not come up")


async def test_metrics_are_not_served_without_a_token_or_the_public_setting(stacks: StackFactory) -> None:
    closed = await stacks.start(recorder=False)
    answer = await closed.api.get("/metrics")
    assert answer.status_code == 404
    assert "CALLREC_METRICS_TOKEN" in answer.json()["message"]
    public = await stacks.start(recorder=False, metrics_public=True)
    async with httpx.AsyncClient(base_url=str(public.api.base_url)) as anonymous:
        opened = await anonymous.get("/metrics")
    assert opened.status_code == 200 and "callrec_http_requests_total" in opened.text


async def test_the_temporal_sdk_serves_its_metrics_for_the_worker(stacks: StackFactory, tmp_path: Path) -> None:
    port = free_port()
    settings = make_settings(tmp_path, stacks.env.client.service_client.config.target_host, temporal_metrics_port=port)
    runtime = metrics_runtime(settings)
    assert runtime is not None
    assert metrics_runtime(settings.model_copy(update={"temporal_metrics_port": 0})) is None
    client = await connect(settings, runtime)
    stack = await stacks.start(client=client)  # the worker (and the API) on the client with the SDK's metrics
    room_id = await create_room(stack.api)
    await join(stack.api, room_id, "Alice")
    assert (await record(stack.api, room_id, seconds=0.5))["status"] == "complete"
    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    names = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", text, flags=re.MULTILINE))  # as Prometheus stores them
    assert TEMPORAL_SDK_SERIES <= names, sorted(names)
