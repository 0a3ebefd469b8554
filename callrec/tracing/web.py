"""Server spans for the Quart apps (the API, the recorder): ASGI middleware, named by route template."""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import Span
from quart import Quart, request
from quart.signals import request_started

from callrec.tracing import UNTRACED_PATHS, URL_ATTRIBUTES, current_provider, name_server_span, redacted_query


def instrument_app(app: Quart) -> None:
    """A server span for each request to `app`. Call it last in the app's factory: the span then covers the ASGI
    layers the factory wrapped around the app (the upload), and what they answer by themselves."""
    provider = current_provider()
    if provider is None:
        return
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware  # only when tracing is on

    app.asgi_app = OpenTelemetryMiddleware(  # type: ignore[method-assign,assignment]
        app.asgi_app,
        excluded_urls=UNTRACED_PATHS,
        default_span_details=lambda scope: (str(scope.get("method") or "HTTP"), {}),
        tracer_provider=provider,
        exclude_spans=["receive", "send"],
        server_request_hook=_redact_query,
    )
    request_started.connect(_name_by_route, app)


async def _name_by_route(sender: Quart, **_: object) -> None:
    """Once Quart matched the request to a route, before any of the app's hooks can answer it."""
    if request.url_rule is not None:
        name_server_span(request.method, request.url_rule.rule)


def _redact_query(span: Span, scope: dict[str, Any]) -> None:
    """No query parameter's value in a span: `?recordingSecret=...` (a shared recording's link) is a secret."""
    attributes = getattr(span, "attributes", None) or {}
    for key in (*URL_ATTRIBUTES, "url.query"):
        value = attributes.get(key)
        if isinstance(value, str):
            span.set_attribute(key, redacted_query(value) if key != "url.query" else redacted_query(f"?{value}")[1:])
