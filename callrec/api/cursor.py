"""Opaque `nextPageToken`s for the recordings listing, signed by `pagetoken`.

The payload holds the sort field and order, a hash of the filters, and the last row's sort value and id,
so a token only continues the listing it was made for (same sortField, sortOrder and filters); anything
else is an `InvalidCursor`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from callrec.api import pagetoken
from callrec.storage.listing import After, SortField, SortOrder, SortValue

VERSION = 1
TAG_BYTES = pagetoken.TAG_BYTES


class InvalidCursor(Exception):
    """The token is not one this server made for this listing; the message says why, for the client."""


def derive_key(secret: str) -> bytes:
    return pagetoken.derive_key(secret, "recordings")


def filter_hash(filters: Mapping[str, Any]) -> str:
    """A short, stable digest of the filter set a token belongs to."""
    canonical = json.dumps(filters, separators=(",", ":"), sort_keys=True, ensure_ascii=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()[:12]).decode()


def encode(key: bytes, sort_field: SortField, sort_order: SortOrder, filters: Mapping[str, Any], after: After) -> str:
    payload = {
        "v": VERSION,
        "f": sort_field.value,
        "o": sort_order.value,
        "h": filter_hash(filters),
        "k": after.value,
        "id": after.recording_id,
    }
    return pagetoken.sign(key, payload)


def decode(key: bytes, token: str, sort_field: SortField, sort_order: SortOrder, filters: Mapping[str, Any]) -> After:
    """Where the listing continues; raises InvalidCursor unless this server made `token` for this listing."""
    try:
        payload = pagetoken.unsign(key, token)
    except pagetoken.InvalidPageToken as exc:
        raise InvalidCursor(str(exc)) from exc
    if payload.get("v") != VERSION:
        raise InvalidCursor("not a page token of this version")
    if payload.get("f") != sort_field.value or payload.get("o") != sort_order.value:
        raise InvalidCursor(
            f"the page token continues a listing sorted by {payload.get('f')} {payload.get('o')}, "
            f"not by {sort_field.value} {sort_order.value}"
        )
    if payload.get("h") != filter_hash(filters):
        raise InvalidCursor("the page token continues a listing with other filters")
    recording_id = payload.get("id")
    if not isinstance(recording_id, str):
        raise InvalidCursor("not a page token")
    return After(value=_last_value(sort_field, payload.get("k")), recording_id=recording_id)


def _last_value(sort_field: SortField, value: object) -> SortValue:
    if sort_field is SortField.ROOM_NAME:
        if isinstance(value, str):
            return value
    elif not isinstance(value, bool):
        if isinstance(value, int):
            return value
        if isinstance(value, float) and sort_field is SortField.DURATION:
            return value
    raise InvalidCursor("not a page token")
