"""`GET /recorders`: the built-in recorders' pool, with each recorder's load and state (API key only)."""

from __future__ import annotations

import time

from quart import Blueprint, Response, jsonify

from callrec.api import schemas
from callrec.api.auth import api_key_only
from callrec.api.operations import Answer, Who, declare
from callrec.api.services import services
from callrec.storage.pool import RecorderPool

blueprint = Blueprint("recorders", __name__)


@blueprint.get("/recorders")
@declare(
    "listRecorders",
    "List the recorders of the pool",
    tag="Recorders",
    security=Who.API_KEY,
    responses={
        200: Answer("Every recorder heard from in the last day", schemas.Recorders),
    },
    auth=api_key_only,
    notes="A recorder is `offline` when it has not registered for 15 s; nothing new goes to it. `load` is the cost "
    "of the recordings holding a slot on it, in 720p30 recordings (audio-only 0.1), against its `capacity`.",
)
async def list_recorders() -> Response:
    views = await RecorderPool(services().catalog).recorders(int(time.time() * 1000))
    return jsonify(
        {
            "recorders": [
                {
                    "id": v.recorder_id,
                    "url": v.url,
                    "taskQueue": v.task_queue,
                    "state": v.state.value,
                    "capacity": v.capacity,
                    "load": v.load,
                    "recordings": v.slots,
                    "publishingRooms": len(v.rooms),
                    "lastSeen": v.seen_at,
                }
                for v in views
            ]
        }
    )
