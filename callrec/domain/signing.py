"""HMAC checksums of the Talk recording-server protocol.

Checksum = lowercase hex HMAC-SHA256(secret, random + payload), where payload is the request body
(backend callbacks and requests to recording servers) or the room token (`/store`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

RANDOM_HEADER = "Talk-Recording-Random"
CHECKSUM_HEADER = "Talk-Recording-Checksum"
BACKEND_HEADER = "Talk-Recording-Backend"
MIN_RANDOM_LENGTH = 32


def checksum(secret: str, random: str, payload: bytes) -> str:
    return hmac.new(secret.encode(), random.encode() + payload, hashlib.sha256).hexdigest()


def signed_headers(secret: str, payload: bytes) -> dict[str, str]:
    random = secrets.token_hex(32)
    return {RANDOM_HEADER: random, CHECKSUM_HEADER: checksum(secret, random, payload)}


def verify(secret: str, random: str | None, given: str | None, payload: bytes) -> bool:
    if not random or not given or len(random) < MIN_RANDOM_LENGTH:
        return False
    return hmac.compare_digest(checksum(secret, random, payload), given.lower())
