"""Page tokens: what one encodes decodes back, and nothing else decodes at all."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest

from callrec.api import cursor
from callrec.api.cursor import InvalidCursor
from callrec.storage.listing import After, RecordingFilter, SortField, SortOrder
from callrec.storage.textmatch import MatchMode

KEY = cursor.derive_key("test-api-key")
FILTERS = RecordingFilter(room_id="weekly-abc", room_name="Wee", room_name_match=MatchMode.PREFIX).canonical()
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


LAST = After(1_700_000_000_123, "weekly-abc--EG_x--y")


def token() -> str:
    return cursor.encode(KEY, SortField.START_DATE, SortOrder.DESC, FILTERS, LAST)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (SortField.START_DATE, 1_700_000_000_123),
        (SortField.START_DATE, -1),
        (SortField.SIZE, 2**53 + 1),
        (SortField.DURATION, 12.345678901234567),
        (SortField.DURATION, 0.1 + 0.2),
        (SortField.DURATION, -1),
        (SortField.ROOM_NAME, "Äpfel & 100% _weekly_ \\ \u00a0 日本"),
        (SortField.ROOM_NAME, ""),
    ],
)
@pytest.mark.parametrize("order", list(SortOrder))
def test_round_trip(field: SortField, value: int | float | str, order: SortOrder) -> None:
    after = After(value, "room-1--EG_abc--XYZ")
    encoded = cursor.encode(KEY, field, order, FILTERS, after)
    assert set(encoded) <= set(ALPHABET)  # URL-safe, no padding
    decoded = cursor.decode(KEY, encoded, field, order, FILTERS)
    assert decoded == after and type(decoded.value) is type(value)


def test_filter_hash_is_stable_and_order_independent() -> None:
    assert cursor.filter_hash({"a": 1, "b": None}) == cursor.filter_hash({"b": None, "a": 1})
    assert cursor.filter_hash({"a": 1}) != cursor.filter_hash({"a": 2})
    assert cursor.filter_hash(RecordingFilter().canonical()) != cursor.filter_hash(FILTERS)


def test_every_single_character_change_is_rejected() -> None:
    good = token()
    for position, original in enumerate(good):
        for replacement in {ALPHABET[(ALPHABET.index(original) + 1) % 64], ALPHABET[ALPHABET.index(original) ^ 1]}:
            tampered = good[:position] + replacement + good[position + 1 :]
            with pytest.raises(InvalidCursor):
                cursor.decode(KEY, tampered, SortField.START_DATE, SortOrder.DESC, FILTERS)


def test_truncated_and_extended_tokens_are_rejected() -> None:
    good = token()
    for length in range(len(good)):
        with pytest.raises(InvalidCursor):
            cursor.decode(KEY, good[:length], SortField.START_DATE, SortOrder.DESC, FILTERS)
    for extra in ("A", "AA", "=", "==", ".", " "):
        with pytest.raises(InvalidCursor):
            cursor.decode(KEY, good + extra, SortField.START_DATE, SortOrder.DESC, FILTERS)


@pytest.mark.parametrize(
    "garbage", ["", "!!!", "abc", "====", "a b", "é" * 40, "A" * 10_000, base64.b64encode(b"\xff" * 40).decode()]
)
def test_garbage_is_rejected(garbage: str) -> None:
    with pytest.raises(InvalidCursor):
        cursor.decode(KEY, garbage, SortField.START_DATE, SortOrder.DESC, FILTERS)


def test_a_token_only_continues_its_own_listing() -> None:
    good = token()
    with pytest.raises(InvalidCursor, match="sorted by startDate desc"):
        cursor.decode(KEY, good, SortField.START_DATE, SortOrder.ASC, FILTERS)
    with pytest.raises(InvalidCursor):
        cursor.decode(KEY, good, SortField.SIZE, SortOrder.DESC, FILTERS)
    with pytest.raises(InvalidCursor, match="other filters"):
        cursor.decode(
            KEY, good, SortField.START_DATE, SortOrder.DESC, RecordingFilter(room_id="weekly-abc").canonical()
        )
    with pytest.raises(InvalidCursor, match="not made by this server"):
        cursor.decode(cursor.derive_key("another-api-key"), good, SortField.START_DATE, SortOrder.DESC, FILTERS)


def test_key_is_derived_not_the_api_key() -> None:
    assert KEY != b"test-api-key" and len(KEY) == 32
    assert cursor.derive_key("test-api-key") == KEY != cursor.derive_key("test-api-key2")


def sign(payload: Any) -> str:
    """A token with a valid tag around any payload: what a bug in `encode` could produce."""
    body = json.dumps(payload).encode()
    tag = hmac.new(KEY, body, hashlib.sha256).digest()[: cursor.TAG_BYTES]
    return base64.urlsafe_b64encode(tag + body).decode().rstrip("=")


@pytest.mark.parametrize(
    "payload",
    [
        [1, 2],
        "text",
        {"v": 2, "f": "startDate", "o": "desc", "h": cursor.filter_hash(FILTERS), "k": 1, "id": "x"},
        {"v": 1, "f": "startDate", "o": "desc", "h": cursor.filter_hash(FILTERS), "k": "1", "id": "x"},
        {"v": 1, "f": "startDate", "o": "desc", "h": cursor.filter_hash(FILTERS), "k": 1.5, "id": "x"},
        {"v": 1, "f": "startDate", "o": "desc", "h": cursor.filter_hash(FILTERS), "k": True, "id": "x"},
        {"v": 1, "f": "startDate", "o": "desc", "h": cursor.filter_hash(FILTERS), "k": None, "id": "x"},
        {"v": 1, "f": "startDate", "o": "desc", "h": cursor.filter_hash(FILTERS), "k": 1, "id": 7},
        {"v": 1, "f": "startDate", "o": "desc", "h": cursor.filter_hash(FILTERS), "k": 1},
    ],
)
def test_well_signed_but_malformed_payloads_are_rejected(payload: Any) -> None:
    with pytest.raises(InvalidCursor):
        cursor.decode(KEY, sign(payload), SortField.START_DATE, SortOrder.DESC, FILTERS)


def test_non_utf8_body_with_a_valid_tag_is_rejected() -> None:
    body = b"\xff\xfe{}"
    tag = hmac.new(KEY, body, hashlib.sha256).digest()[: cursor.TAG_BYTES]
    forged = base64.urlsafe_b64encode(tag + body).decode().rstrip("=")
    with pytest.raises(InvalidCursor):
        cursor.decode(KEY, forged, SortField.START_DATE, SortOrder.DESC, FILTERS)
