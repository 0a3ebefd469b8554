"""`GET /health`: catalog, object store and Temporal, each checked with a short timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from quart import Blueprint, Response, jsonify

from callrec.api import schemas
from callrec.api.operations import (
    Answer,
    Who,
    declare,
)
from callrec.api.services import services

blueprint = Blueprint("health", __name__)
CHECK_TIMEOUT_S = 3.0


async def _probe(check: Awaitable[object]) -> dict[str, str]:
    try:
        await asyncio.wait_for(check, CHECK_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - any failure means "down", with its reason
        return {"status": "down", "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"status": "up"}


@blueprint.get("/health")
@declare(
    "getHealth",
    "Health of the API and what it depends on",
    tag="Health",
    security=Who.NONE,
    responses={200: Answer("Everything is up", schemas.Health), 503: Answer("Something is down", schemas.Health)},
)
async def health() -> tuple[Response, int]:
    svc = services()
    catalog, store, temporal = await asyncio.gather(
        _probe(svc.catalog.check()),
        _probe(svc.store.check()),
        _probe(svc.temporal.service_client.check_health()),
    )
    parts = {"catalog": catalog, "objectStore": store, "temporal": temporal}
    healthy = all(part["status"] == "up" for part in parts.values())
    return jsonify({"status": "up" if healthy else "down", **parts}), 200 if healthy else 503
