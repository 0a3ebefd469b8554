"""Nextcloud OCS envelopes, as Talk clients and recording servers expect them."""

from __future__ import annotations

import json
from typing import Any

from quart import Response

OCS_BASE = "/ocs/v2.php/apps/spreed/api/v1"


def envelope(data: Any, status: int = 200, message: str = "OK") -> dict[str, Any]:
    return {
        "ocs": {
            "meta": {"status": "ok" if status < 400 else "failure", "statuscode": status, "message": message},
            "data": data,
        }
    }


def encode(data: Any, status: int = 200, message: str = "OK") -> bytes:
    return json.dumps(envelope(data, status, message)).encode()


def ocs_response(data: Any, status: int = 200, message: str = "OK") -> Response:
    return Response(encode(data, status, message), status=status, content_type="application/json")
