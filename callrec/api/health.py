"""`GET /health`: is every part a recording start needs there? Checked at once, each with a short timeout.

The parts: the catalog, the object store, Temporal, a worker polling the task queue (Temporal's
DescribeTaskQueue) and the recording server (the built-in recorder's `/health`, the Talk recording server,
LiveKit). Anyone gets up/down per part; why a part is down (exception text, addresses) only goes to a
caller with the API key, and to the log.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta

import httpx
from quart import Blueprint, Response, jsonify, request
from temporalio.client import Client

from callrec.api import schemas
from callrec.api.auth import API_KEY_HEADER
from callrec.api.errors import invalid_api_key
from callrec.api.operations import Answer, Who, declare, error
from callrec.api.services import services
from callrec.domain.pool import LIVE_WITHIN_S, RecorderState
from callrec.domain.settings import Settings
from callrec.logs.http import routine
from callrec.storage.pool import RecorderPool
from callrec.temporal import workflow_pollers

log = logging.getLogger(__name__)
blueprint = Blueprint("health", __name__)

CHECK_TIMEOUT_S = 2.0
# An idle worker renews its long polls about once a minute (the server answers an empty poll after 60 s), and
# Temporal lists a poller for minutes after it went away: a poller is a live worker if it polled this recently.
WORKER_SEEN_WITHIN_S = 120.0
ERROR_CHARS = 300


class Down(Exception):
    """A part answered, and is not usable; the message says why."""


async def _probe(name: str, check: Awaitable[object]) -> dict[str, str]:
    try:
        await asyncio.wait_for(check, CHECK_TIMEOUT_S)
    except TimeoutError:
        reason = f"no answer within {CHECK_TIMEOUT_S:g} s"
    except Down as exc:
        reason = str(exc)
    except Exception as exc:  # noqa: BLE001 - any failure means "down", with its reason
        reason = f"{type(exc).__name__}: {exc}"
    else:
        return {"status": "up"}
    log.warning("health: %s is down: %s", name, reason)
    return {"status": "down", "error": reason[:ERROR_CHARS]}


async def worker_polling(client: Client, settings: Settings) -> None:
    """Down unless some worker polled the task queue for workflow tasks within `WORKER_SEEN_WITHIN_S`."""
    pollers = await workflow_pollers(client, settings.task_queue, CHECK_TIMEOUT_S)
    now = datetime.now(UTC)
    horizon = now - timedelta(seconds=WORKER_SEEN_WITHIN_S)
    if not any(poller.last_access_time.ToDatetime(UTC) >= horizon for poller in pollers):
        raise Down(
            f"no worker polled task queue {settings.task_queue!r} in the last {WORKER_SEEN_WITHIN_S:g} s "
            "(is `callrec worker` running, with the same CALLREC_TASK_QUEUE and CALLREC_TEMPORAL_ADDRESS?)"
        )


def recorder_probe(settings: Settings) -> tuple[str, bool]:
    """The URL that shows the configured recording server answers, and whether only a 200 counts as up (the
    built-in recorder's own `/health`; for the others any HTTP answer means it is there)."""
    if settings.egress == "talk":
        if not settings.talk_recording_server:
            raise Down("CALLREC_TALK_RECORDING_SERVER is not set (CALLREC_EGRESS=talk needs it)")
        return f"{settings.talk_recording_server.rstrip('/')}/api/v1/welcome", False
    if settings.egress == "livekit":
        if not settings.livekit_url:
            raise Down("CALLREC_LIVEKIT_URL is not set (CALLREC_EGRESS=livekit needs it)")
        url = settings.livekit_url.rstrip("/")
        for websocket, http in (("wss://", "https://"), ("ws://", "http://")):
            if url.startswith(websocket):
                url = http + url.removeprefix(websocket)
        return url + "/", False
    return f"{settings.recorder_url.rstrip('/')}/health", True


async def recorder_answers(settings: Settings) -> None:
    if settings.egress == "builtin":  # the pool: some recorder registered lately and takes recordings
        now = int(time.time() * 1000)
        views = await RecorderPool(services().catalog).recorders(now)
        if not any(v.state == RecorderState.ACTIVE for v in views):
            raise Down(
                f"no built-in recorder registered in the last {LIVE_WITHIN_S:g} s that takes recordings (is "
                "`callrec recorder` running, with CALLREC_API_URL reaching this API?)"
            )
        return
    url, only_ok = recorder_probe(settings)
    try:
        async with httpx.AsyncClient(timeout=CHECK_TIMEOUT_S) as http:
            response = await http.get(url)
    except httpx.HTTPError as exc:
        raise Down(f"{url}: {type(exc).__name__}: {exc}") from exc
    if only_ok and response.status_code != 200:
        raise Down(f"{url} answered {response.status_code}")


def _with_details() -> bool:
    """Whether the caller sent the API key (a wrong one is a 401: a monitor with a stale key learns it)."""
    sent = request.headers.get(API_KEY_HEADER)
    if sent is None:
        return False
    if not hmac.compare_digest(sent.encode(), services().settings.require_api_key().encode()):
        raise invalid_api_key()
    return True


@blueprint.get("/health")
@declare(
    "getHealth",
    "Health of the API and of every part a recording needs",
    tag="Health",
    security=[{}, *Who.API_KEY],
    responses={
        200: Answer("Every part is up", schemas.Health),
        401: error("X-API-KEY was sent and is wrong"),
        503: Answer("A part is down: recordings cannot start now", schemas.Health),
    },
    notes="Parts: `catalog`, `objectStore`, `temporal`, `worker` (a worker polled the task queue within the last "
    "2 minutes) and `recorder` (the configured recording server answers). Each is checked with a 2 s timeout, all "
    "at once. Without credentials each part is only `up` or `down`; with `X-API-KEY` a part that is down also "
    "carries `error`, the reason.",
)
async def health() -> tuple[Response, int]:
    routine()  # probed every few seconds: a debug line unless it fails
    details = _with_details()
    svc = services()
    names = ("catalog", "objectStore", "temporal", "worker", "recorder")
    checks = await asyncio.gather(
        _probe("catalog", svc.catalog.check()),
        _probe("objectStore", svc.store.check()),
        _probe("temporal", svc.temporal.service_client.check_health()),
        _probe("worker", worker_polling(svc.temporal, svc.settings)),
        _probe("recorder", recorder_answers(svc.settings)),
    )
    parts = {name: check if details else {"status": check["status"]} for name, check in zip(names, checks, strict=True)}
    healthy = all(part["status"] == "up" for part in parts.values())
    return jsonify({"status": "up" if healthy else "down", **parts}), 200 if healthy else 503
