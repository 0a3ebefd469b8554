"""Room and recording identifiers."""

from __future__ import annotations

import re
import secrets
import string

_ALPHABET = string.ascii_lowercase + string.digits
_ALNUM = string.ascii_letters + string.digits
# Identifiers that go into paths and file names: nothing to escape, no `.` and no `/`.
PLAIN_ID = r"^[A-Za-z0-9_-]{1,128}$"


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def new_room_id(room_name: str) -> str:
    """`{slug of the name}-{random}`: readable, and never containing the `--` that separates recording ids."""
    slug = re.sub(r"[^a-z0-9]+", "-", room_name.lower()).strip("-")[:48].strip("-") or "room"
    return f"{slug}-{_random(_ALPHABET, 8)}"


def new_recording_id(room_id: str) -> str:
    return f"{room_id}--EG_{_random(_ALNUM, 12)}--{_random(_ALNUM, 5)}"


def is_plain_id(value: object) -> bool:
    """Letters, digits, `_` and `-`, 1 to 128 of them: no `.`, no `/`, nothing to escape."""
    return isinstance(value, str) and re.fullmatch(PLAIN_ID, value) is not None
