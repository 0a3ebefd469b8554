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
MAX_RANDOM_LENGTH = 256  # Talk's recording server sends 86 characters (token_urlsafe(64)), callrec's 64


def checksum(secret: str, random: str, payload: bytes) -> str:
    return hmac.new(secret.encode(), random.encode() + payload, hashlib.sha256).hexdigest()


def signed_headers(secret: str, payload: bytes) -> dict[str, str]:
    random = secrets.token_hex(32)
    return {RANDOM_HEADER: random, CHECKSUM_HEADER: checksum(secret, random, payload)}


def plausible_random(random: str) -> bool:
    """32 to 256 printable ASCII characters: what a random may be (it is remembered to refuse replays)."""
    return MIN_RANDOM_LENGTH <= len(random) <= MAX_RANDOM_LENGTH and random.isascii() and random.isprintable()


def verify(secret: str, random: str | None, given: str | None, payload: bytes, *, exact: bool = False) -> bool:
    """Whether `given` is the checksum of `random` + `payload`; a random that is not plausible never is. Talk takes
    the hex in either case; the Talk recording server (`exact`) only as it computes it, in lowercase."""
    if random is None or not plausible_random(random) or given is None or len(given) != 64 or not given.isascii():
        return False
    return hmac.compare_digest(checksum(secret, random, payload), given if exact else given.lower())
