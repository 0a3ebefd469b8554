"""Opaque page tokens: the URL-safe base64 (unpadded) of a 16-byte HMAC-SHA256 tag and a compact JSON payload.

Clients can neither forge nor alter one; each listing signs with its own derived key, so a token of one
listing is meaningless to another. Only the one canonical base64 spelling is accepted (the last character
has spare bits that would otherwise let an altered token through).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from typing import Any

TAG_BYTES = 16  # HMAC-SHA256 truncated to 128 bits
MAX_TOKEN_CHARS = 4096
_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")


class InvalidPageToken(Exception):
    """The token is not one this server made for this listing; the message says why, for the client."""


def derive_key(secret: str, listing: str) -> bytes:
    return hmac.new(secret.encode(), f"callrec page token: {listing}".encode(), hashlib.sha256).digest()


def _tag(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, body, hashlib.sha256).digest()[:TAG_BYTES]


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def sign(key: bytes, payload: dict[str, Any]) -> str:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return _b64encode(_tag(key, body) + body)


def unsign(key: bytes, token: str) -> dict[str, Any]:
    if not token or len(token) > MAX_TOKEN_CHARS or not _ALPHABET.fullmatch(token):
        raise InvalidPageToken("not a page token")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidPageToken("not a page token") from exc
    if _b64encode(raw) != token or len(raw) <= TAG_BYTES:
        raise InvalidPageToken("not a page token")
    tag, body = raw[:TAG_BYTES], raw[TAG_BYTES:]
    if not hmac.compare_digest(tag, _tag(key, body)):
        raise InvalidPageToken("the page token was altered or was not made by this server")
    try:
        payload = json.loads(body)
    except ValueError as exc:  # also UnicodeDecodeError
        raise InvalidPageToken("not a page token") from exc
    if not isinstance(payload, dict):
        raise InvalidPageToken("not a page token")
    return payload
