"""OpenTelemetry tracing: one trace per recording, from the API's start through the workflow and its activities to
the recorder and its callbacks. Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set.

`configure_tracing` is called once at a process's start (`callrec api | worker | recorder`); when it installed
nothing, every hook below does nothing, so a process without an endpoint does no tracing work at all. The hooks:

- `web.instrument_app`: the Quart apps' ASGI middleware (a server span per request, named by its route template, joined
  to the caller's trace by its `traceparent` header); `/health` and `/metrics` are not traced;
- outgoing httpx requests (the worker to the recorder, the recorder's callbacks and upload to the API) get a client
  span and carry `traceparent`, so the recorder's `started`/`stopped` callbacks join the recording's trace;
- `temporal_interceptors`: the Temporal SDK's `TracingInterceptor` for `callrec.temporal.connect`'s clients (and the
  workers made from them): StartWorkflow (StartUpdateWithStartWorkflow for a start that waits), SignalWorkflow,
  StartWorkflowUpdate spans in the API, RunWorkflow, StartActivity and RunActivity spans in the worker and the
  recorder, linked through the workflow's headers.

Spans go over OTLP/HTTP (protobuf), the OpenTelemetry default protocol (port 4318): no gRPC stack to install.
The standard `OTEL_*` variables apply (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_HEADERS`,
`OTEL_TRACES_SAMPLER`...); without `OTEL_SERVICE_NAME` each process names itself (`callrec-api`, ...).
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

if TYPE_CHECKING:  # the SDK and the instrumentations are imported only when tracing is on
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from temporalio.client import Interceptor

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
PROTOCOL = "http/protobuf"
URL_ATTRIBUTES = ("http.url", "url.full")  # the semantic conventions' old and new names of a span's full URL
UNTRACED_PATHS = r"/health$,/metrics$"  # probes and scrapes: a trace each would bury the recordings' traces
_provider: TracerProvider | None = None


def tracing_wanted() -> bool:
    """An OTLP endpoint is set and the SDK is not disabled (`OTEL_SDK_DISABLED=true`)."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(os.environ.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def _resource(service: str) -> Resource:
    """`OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES` as set, else `service` as the service's name."""
    from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource

    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: service}))
    try:
        return resource.merge(Resource({SERVICE_VERSION: version("callrec")}))
    except PackageNotFoundError:
        return resource


def _exporting_provider(service: str) -> TracerProvider:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    for name in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        protocol = os.environ.get(name, "").strip()
        if protocol and protocol != PROTOCOL:
            raise SystemExit(f"{name}={protocol}: callrec exports traces over OTLP {PROTOCOL} only; set it so or unset")
        if protocol:
            break
    provider = TracerProvider(resource=_resource(service))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def configure_tracing(service: str, provider: TracerProvider | None = None) -> TracerProvider | None:
    """Turns tracing on for this process when an OTLP endpoint is set (or `provider` is given: the tests hand
    theirs, with an in-memory exporter); the provider in use, None when tracing is off (nothing installed).

    Only a provider made here from the environment becomes OpenTelemetry's global one (which can be set once)."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    global _provider
    if _provider is not None:
        raise RuntimeError("tracing is configured already in this process")
    if provider is None:
        if not tracing_wanted():
            return None
        provider = _exporting_provider(service)
        trace.set_tracer_provider(provider)
    HTTPXClientInstrumentor().instrument(
        tracer_provider=provider, request_hook=_client_url, async_request_hook=_async_client_url
    )
    _provider = provider
    return provider


def shutdown_tracing() -> None:
    """Exports what is still buffered and undoes `configure_tracing` (before the process exits; after a test)."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    global _provider
    if _provider is None:
        return
    provider, _provider = _provider, None
    HTTPXClientInstrumentor().uninstrument()
    provider.shutdown()


def redacted_query(url: str) -> str:
    """`url` with every query parameter's value `REDACTED` (a recording's or room's secret may be one)."""
    base, _, query = url.partition("?")
    if not query:
        return url
    names = [part.split("=", 1)[0] for part in query.split("&") if part]
    return base + "?" + "&".join(f"{name}=REDACTED" for name in names)


def _client_url(span: trace.Span, request: Any) -> None:
    """An outgoing request's span names its origin only: a webhook's URL may carry its secret in the path."""
    if span.is_recording():
        origin = f"{request.url.scheme}://{request.url.netloc.decode()}/"
        for key in URL_ATTRIBUTES:
            if key in (getattr(span, "attributes", None) or {}):
                span.set_attribute(key, origin)


async def _async_client_url(span: trace.Span, request: Any) -> None:
    _client_url(span, request)


def current_provider() -> TracerProvider | None:
    """The provider `configure_tracing` installed; None while tracing is off."""
    return _provider


def temporal_interceptors() -> list[Interceptor]:
    """For `Client.connect(interceptors=...)`: Temporal's tracing interceptor when tracing is on, else none. Workers
    made from such a client trace workflows and activities too."""
    if _provider is None:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor(_provider.get_tracer("callrec.temporal"))]


def name_server_span(method: str, route: str) -> None:
    """`POST /api/v1/recordings/<recording_id>/stop`, not the path with its ids: one span name per route, for the
    request being served (for the routes an ASGI layer serves ahead of Quart, that layer says it)."""
    span = trace.get_current_span()
    if span.is_recording():
        span.update_name(f"{method} {route}")
        span.set_attribute("http.route", route)
