"""Opaque page tokens: compact JSON, URL-safe base64, and an HMAC tag so clients cannot forge or alter them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

TAG_BYTES = 16


class InvalidPageToken(Exception):
    pass


def _key(secret: str, purpose: str) -> bytes:
    return hmac.new(secret.encode(), f"callrec page token: {purpose}".encode(), hashlib.sha256).digest()


def sign(secret: str, purpose: str, payload: dict[str, Any]) -> str:
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    tag = hmac.new(_key(secret, purpose), body, hashlib.sha256).digest()[:TAG_BYTES]
    return base64.urlsafe_b64encode(tag + body).decode().rstrip("=")


def unsign(secret: str, purpose: str, token: str) -> dict[str, Any]:
    """The payload of a token made by `sign` for the same purpose; raises InvalidPageToken otherwise."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError) as exc:
        raise InvalidPageToken("not a page token") from exc
    tag, body = raw[:TAG_BYTES], raw[TAG_BYTES:]
    expected = hmac.new(_key(secret, purpose), body, hashlib.sha256).digest()[:TAG_BYTES]
    if len(tag) != TAG_BYTES or not hmac.compare_digest(tag, expected):
        raise InvalidPageToken("the page token was altered or belongs to another listing")
    payload = json.loads(body)
    if not isinstance(payload, dict):
        raise InvalidPageToken("not a page token")
    return payload
