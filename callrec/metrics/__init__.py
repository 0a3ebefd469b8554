"""Prometheus metrics of the API, the worker and the recorder.

Each process role counts into its own registry (`API`, `WORKER`, `RECORDER`), and its `/metrics` serves that
one alone: what a process shows is what it did, also where several parts run in one process (the tests).
HTTP requests are counted by route template (the url_map rule, `/api/v1/recordings/<recording_id>`), never by
raw path: ids must not make a series each. Who may read `/metrics`: a caller with `Authorization: Bearer
<CALLREC_METRICS_TOKEN>`, or anyone when `CALLREC_METRICS_PUBLIC` is true; with neither set it answers 404.
The Temporal SDK's own metrics (`temporal_*`) are served by the SDK's exporter (`callrec.temporal`).
This module defines the metrics and imports no web framework (the activities the recordings service imports
count too); `callrec.metrics.http` counts HTTP requests and serves `/metrics`.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` twin of each counter and histogram

API = CollectorRegistry()
WORKER = CollectorRegistry()
RECORDER = CollectorRegistry()

REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
WORK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)
LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

# --- the API ---------------------------------------------------------------------------------------------------

RECORDING_START = Histogram(
    "callrec_recording_start_seconds",
    "A recording start request, from its arrival at the API until it was answered (started, or why not)",
    ["front_door", "status"],
    buckets=REQUEST_BUCKETS,
    registry=API,
)
IN_PROGRESS = Gauge(
    "callrec_recordings_in_progress",
    "Recordings not ended yet, by status, as the catalog has them when scraped (every worker's)",
    ["status"],
    registry=API,
)
UPLOAD_BYTES = Counter(
    "callrec_upload_bytes",
    "Bytes of recording files recording servers uploaded (POST .../store), by outcome",
    ["outcome"],
    registry=API,
)
UPLOAD_SECONDS = Histogram(
    "callrec_upload_seconds",
    "How long a recording upload (POST .../store) took until it was answered, by outcome",
    ["outcome"],
    buckets=WORK_BUCKETS,
    registry=API,
)

# --- the worker -------------------------------------------------------------------------------------------------

RECORDINGS_STARTED = Counter(
    "callrec_recordings_started",
    "Recordings whose recorder reported started (counted once, when the catalog row became active)",
    ["egress"],
    registry=WORKER,
)
RECORDINGS_ENDED = Counter(
    "callrec_recordings_ended",
    "Recordings that ended, by final status (complete, failed, aborted, limit_reached), errorCode and egress "
    "(counted once, when the catalog row took that status)",
    ["status", "error_code", "egress"],
    registry=WORKER,
)
FINALIZE_SECONDS = Histogram(
    "callrec_finalize_seconds",
    "Storing an uploaded file: validate (download, probe, checksum), previews (poster, seek thumbnails or "
    "waveform) and store (move to its final key)",
    ["step"],
    buckets=WORK_BUCKETS,
    registry=WORKER,
)
WEBHOOK_DELIVERIES = Counter(
    "callrec_webhook_deliveries",
    "Webhook delivery attempts by outcome: delivered, retryable (network error, 5xx, 429: tried again) or "
    "rejected (another 4xx: given up)",
    ["outcome"],
    registry=WORKER,
)
for _outcome in ("delivered", "retryable", "rejected"):
    WEBHOOK_DELIVERIES.labels(_outcome)

# --- the recorder -----------------------------------------------------------------------------------------------

ENCODE_LAG = Histogram(
    "callrec_recorder_encode_lag_seconds",
    "How far the built-in recorder's encoding is behind the media it should have encoded by now (sampled each "
    "step of each recording; normally about one frame)",
    buckets=LAG_BUCKETS,
    registry=RECORDER,
)
DROPPED_FRAMES = Counter(
    "callrec_recorder_dropped_frames",
    "Frames the built-in recorder did not record as they came: behind (video frames repeated or skipped "
    "because compositing fell behind) and bad_input (a publisher's audio or video frame that could not be used)",
    ["reason"],
    registry=RECORDER,
)
for _reason in ("behind", "bad_input"):
    DROPPED_FRAMES.labels(_reason)


# --- HTTP requests ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpSeries:
    requests: Counter
    seconds: Histogram


def http_series(registry: CollectorRegistry) -> HttpSeries:
    return HttpSeries(
        Counter(
            "callrec_http_requests",
            "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"],
            registry=registry,
        ),
        Histogram(
            "callrec_http_request_duration_seconds",
            "HTTP requests from arrival until the answer was sent, by route template and method",
            ["route", "method"],
            buckets=REQUEST_BUCKETS,
            registry=registry,
        ),
    )


API_HTTP = http_series(API)
RECORDER_HTTP = http_series(RECORDER)
