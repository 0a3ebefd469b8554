"""Room and recording identifiers."""

from __future__ import annotations

import re
import secrets
import string

_ALPHABET = string.ascii_lowercase + string.digits
_ALNUM = string.ascii_letters + string.digits


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def new_room_id(room_name: str) -> str:
    """`{slug of the name}-{random}`: readable, and never containing the `--` that separates recording ids."""
    slug = re.sub(r"[^a-z0-9]+", "-", room_name.lower()).strip("-")[:48].strip("-") or "room"
    return f"{slug}-{_random(_ALPHABET, 8)}"


def new_recording_id(room_id: str) -> str:
    return f"{room_id}--EG_{_random(_ALNUM, 12)}--{_random(_ALNUM, 5)}"
