"""`GET /metrics`: the API's Prometheus metrics (`callrec.metrics`), with the recordings in progress as the
catalog has them when scraped, so the gauge is right however many workers run."""

from __future__ import annotations

from quart import Blueprint, Response

from callrec.api.operations import Answer, Who, declare, error
from callrec.api.services import services
from callrec.domain.recording import RecordingStatus
from callrec.metrics import API, IN_PROGRESS
from callrec.metrics.http import exposition, refusal

blueprint = Blueprint("monitoring", __name__)


@blueprint.get("/metrics")
@declare(
    "getMetrics",
    "The API's metrics, in Prometheus' text format",
    tag="Health",
    security=Who.METRICS,
    responses={
        200: Answer("The metrics", binary=("text/plain",)),
        401: error("CALLREC_METRICS_TOKEN is set and was not sent as `Authorization: Bearer <token>`"),
        404: error("Metrics are not served: neither CALLREC_METRICS_TOKEN nor CALLREC_METRICS_PUBLIC is set"),
    },
    notes="Recordings started, ended (by status, errorCode and egress: the worker's `/metrics`), in progress, start "
    "latency, uploads, HTTP requests by route template. Readable with `Authorization: Bearer "
    "<CALLREC_METRICS_TOKEN>`, or by anyone when `CALLREC_METRICS_PUBLIC` is true.",
)
async def metrics() -> Response | tuple[Response, int, dict[str, str]]:
    svc = services()
    if (refused := refusal(svc.settings)) is not None:
        return refused
    counts = await svc.catalog.count_in_progress()
    for status in RecordingStatus:
        if status.in_progress:
            IN_PROGRESS.labels(status.value).set(counts.get(status.value, 0))
    return exposition(API)
