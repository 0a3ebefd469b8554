"""Tracing is off without an OTLP endpoint, and with one a process's spans reach it over OTLP/HTTP, named by the
process. (The span tree of a recording: tests/e2e/test_tracing.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from quart import Quart

from callrec.tracing import configure_tracing, temporal_interceptors
from callrec.tracing.web import instrument_app

OTEL_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SERVICE_NAME",
                  "OTEL_RESOURCE_ATTRIBUTES", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                  "OTEL_SDK_DISABLED")  # fmt: skip


def test_without_an_endpoint_nothing_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert configure_tracing("callrec-api") is None
    assert temporal_interceptors() == []
    app = Quart("x")
    plain = app.asgi_app
    instrument_app(app)
    assert app.asgi_app == plain
    assert not isinstance(trace.get_tracer_provider(), TracerProvider)
    assert not HTTPXClientInstrumentor().is_instrumented_by_opentelemetry


class Collector:
    """An OTLP/HTTP receiver on loopback: what was POSTed to /v1/traces."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == "/v1/traces":
                    collector.requests.append(ExportTraceServiceRequest.FromString(body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def spans(self) -> dict[str, str]:
        """Each exported span's name, and its process's service.name."""
        found = {}
        for request in self.requests:
            for resource_spans in request.resource_spans:
                attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        found[span.name] = attributes["service.name"]
        return found


@pytest.fixture
def collector() -> Iterator[Collector]:
    collector = Collector()
    thread = threading.Thread(target=collector.server.serve_forever, daemon=True)
    thread.start()
    yield collector
    collector.server.shutdown()
    collector.server.server_close()


# A process that configures tracing as `callrec worker` does, makes one span and exits as the CLI does.
PROCESS = """
from opentelemetry import trace
from callrec.tracing import configure_tracing, shutdown_tracing, temporal_interceptors
assert configure_tracing("callrec-worker") is not None and temporal_interceptors()
with trace.get_tracer("test").start_as_current_span("one span"):
    pass
shutdown_tracing()
"""


def _process(**otel: str) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if name not in OTEL_VARIABLES} | otel
    return subprocess.run([sys.executable, "-c", PROCESS], env=env, capture_output=True, text=True, timeout=60)


def test_spans_go_to_the_otlp_endpoint_named_by_the_process(collector: Collector) -> None:
    done = _process(OTEL_EXPORTER_OTLP_ENDPOINT=collector.url)
    assert done.returncode == 0, done.stderr
    assert collector.spans() == {"one span": "callrec-worker"}


def test_otel_service_name_names_the_process(collector: Collector) -> None:
    done = _process(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"{collector.url}/v1/traces", OTEL_SERVICE_NAME="rec-eu-1")
    assert done.returncode == 0, done.stderr
    assert collector.spans() == {"one span": "rec-eu-1"}


def test_a_protocol_other_than_http_protobuf_is_one_line(collector: Collector) -> None:
    env = {name: value for name, value in os.environ.items() if name not in OTEL_VARIABLES}
    env |= {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    done = subprocess.run(
        [sys.executable, "-m", "callrec.cli", "worker"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr, done.stderr
    assert "OTEL_EXPORTER_OTLP_PROTOCOL=grpc: callrec exports traces over OTLP http/protobuf only" in done.stderr
