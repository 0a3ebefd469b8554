"""One trace per recording: the API's start, the workflow and its activities, the recorder and its callbacks.

The whole stack runs in this process with tracing on into memory (`configure_tracing(provider=...)`), its Temporal
client made by `callrec.temporal.connect` (which adds the tracing interceptor), as `callrec api | worker | recorder`
would each run with `OTEL_EXPORTER_OTLP_ENDPOINT` set.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from bench.common import free_port
from callrec.temporal import connect
from callrec.tracing import configure_tracing, shutdown_tracing
from tests.conftest import StackFactory, make_settings
from tests.helpers import OCS, create_room, join, record

START = "POST /api/v1/recordings"
CALLBACK = f"POST {OCS}/recording/backend"
STORE = f"POST {OCS}/recording/<token>/store"
RECORDER_ROOM = "POST /api/v1/room/<token>"  # the recorder's Talk-protocol endpoint


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """Tracing on for this test, into memory (before the stack: its apps and clients are instrumented as made)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    assert configure_tracing("callrec-test", provider=provider) is provider
    yield exporter
    shutdown_tracing()


async def until_finished(exporter: InMemorySpanExporter, name: str) -> None:
    for _ in range(200):
        if any(span.name == name for span in exporter.get_finished_spans()):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no span {name} finished")


class Tree:
    def __init__(self, spans: Sequence[ReadableSpan]) -> None:
        self.spans = spans
        self.by_id = {span.context.span_id: span for span in spans}

    def named(self, name: str, trace_id: int | None = None) -> list[ReadableSpan]:
        return [s for s in self.spans if s.name == name and trace_id in (None, s.context.trace_id)]

    def one(self, name: str, trace_id: int | None = None) -> ReadableSpan:
        found = self.named(name, trace_id)
        assert len(found) == 1, (name, [s.name for s in self.spans])
        return found[0]

    def parent(self, span: ReadableSpan) -> ReadableSpan | None:
        return None if span.parent is None else self.by_id.get(span.parent.span_id)

    def path(self, span: ReadableSpan, up_to: ReadableSpan) -> list[str]:
        """The names from `span` up through its parents to `up_to`; fails when `up_to` is not an ancestor."""
        names = [span.name]
        current: ReadableSpan | None = span
        while current is not up_to:
            current = self.parent(current) if current is not None else None
            assert current is not None, f"{up_to.name} is not an ancestor of {span.name}: {names}"
            names.append(current.name)
        return names


@pytest.mark.parametrize("egress", ["builtin", "talk"])
async def test_a_recording_is_one_trace_from_its_start_to_the_recorders_callbacks(
    exporter: InMemorySpanExporter, stacks: StackFactory, tmp_path: Path, egress: str
) -> None:
    address = stacks.env.client.service_client.config.target_host
    stacks.client = await connect(make_settings(tmp_path, address))  # the processes' one connect(), as they use it
    recorder_port = free_port()
    # talk: the worker drives the built-in recorder over HTTP, as it drives a Talk recording server
    talk = {"egress": "talk", "talk_recording_server": f"http://127.0.0.1:{recorder_port}"} if egress == "talk" else {}
    stack = await stacks.start(recorder_port=recorder_port, **talk)
    room_id = await create_room(stack.api)
    await join(stack.api, room_id, "Alice", "Bob")
    rec = await record(stack.api, room_id)
    assert rec["status"] == "complete", rec
    # The upload's request may still be answering when the recording shows complete: its span ends then.
    await until_finished(exporter, STORE if egress == "talk" else "RunActivity:finalize")

    tree = Tree(exporter.get_finished_spans())
    start = tree.one(START)
    assert start.kind == SpanKind.SERVER and start.attributes is not None
    assert start.attributes["http.route"] == "/api/v1/recordings"
    trace_id = start.context.trace_id
    workflow = tree.one(
        "StartUpdateWithStartWorkflow:RecordingWorkflow", trace_id
    )  # the start and its update, one call
    assert tree.parent(workflow) is start
    assert workflow.attributes is not None and workflow.attributes["temporalWorkflowID"] == rec["recordingId"]
    assert tree.parent(tree.one("RunWorkflow:RecordingWorkflow", trace_id)) is workflow
    finalize = tree.one("RunActivity:finalize", trace_id)
    assert tree.path(finalize, workflow) == ["RunActivity:finalize", "StartActivity:finalize", workflow.name]

    # The recorder's `started` callback: the API's span for it and its signal to the workflow, in the same trace.
    started = tree.one("SignalWorkflow:recorder_started", trace_id)
    assert started.kind == SpanKind.CLIENT
    if egress == "talk":
        assert tree.path(started, start) == [
            started.name,
            CALLBACK,  # the API
            "POST",  # the recorder's call back
            RECORDER_ROOM,  # the recorder, asked to start
            "POST",  # the worker's call
            "RunActivity:start_egress",
            "StartActivity:start_egress",
            workflow.name,
            START,
        ]
        # The stop goes the same way; the `stopped` callback and the upload join the trace too.
        stopped = tree.one("SignalWorkflow:recorder_stopped", trace_id)
        path = tree.path(stopped, start)
        assert path[:4] == [stopped.name, CALLBACK, "POST", RECORDER_ROOM]
        assert path[-4:] == ["RunActivity:stop_egress", "StartActivity:stop_egress", workflow.name, START]
        stored = tree.one("StartWorkflowUpdate:store_file", trace_id)
        assert tree.path(stored, start)[:5] == [stored.name, STORE, "POST", RECORDER_ROOM, "POST"]
    else:  # the pool: the recorder records in an activity on its own task queue, and calls back from there
        assert tree.path(started, start) == [
            started.name,
            CALLBACK,
            "POST",
            "RunActivity:record_part",
            "StartActivity:record_part",
            workflow.name,
            START,
        ]
    for span in tree.named(CALLBACK, trace_id) + tree.named(RECORDER_ROOM, trace_id):
        assert span.kind == SpanKind.SERVER

    # Span names are routes, never a path with the recording's or the room's id in it.
    recording_id = rec["recordingId"]
    assert not [s.name for s in tree.spans if recording_id in s.name or room_id in s.name]
    stop = tree.one("POST /api/v1/recordings/<recording_id>/stop")
    assert stop.context.trace_id != trace_id  # a request of its own, which the workflow's handler spans join
    tree.one("HandleUpdate:stop", trace_id)


async def test_request_spans_are_named_by_route_keep_no_secret_and_skip_probes(
    exporter: InMemorySpanExporter, stacks: StackFactory
) -> None:
    stack = await stacks.start(recorder=False)
    await stack.api.get("/health")  # 503 here (no recorder): a probe all the same
    secret = "s3cret-0123456789"
    await stack.api.get(f"/api/v1/recordings/nope?recordingSecret={secret}")  # a shared link's secret
    spans = exporter.get_finished_spans()
    server = [s for s in spans if s.kind == SpanKind.SERVER]
    assert "GET /api/v1/recordings/<recording_id>" in [s.name for s in server]
    assert not [s.name for s in server if "health" in s.name]
    assert any("recordingSecret=REDACTED" in str(value) for s in server for value in (s.attributes or {}).values())
    leaked = [(s.name, key) for s in spans for key, value in (s.attributes or {}).items() if secret in str(value)]
    assert leaked == []  # neither the API's span nor the caller's (httpx's: its URL is the origin only)
