"""Room and recording identifiers, and the HMAC checksums of the Talk recording-server protocol."""

from __future__ import annotations

import hashlib
import hmac
import re

import pytest

from callrec.domain.ids import new_recording_id, new_room_id
from callrec.domain.recording import RECORDING_ID
from callrec.domain.signing import (
    CHECKSUM_HEADER,
    MIN_RANDOM_LENGTH,
    RANDOM_HEADER,
    checksum,
    signed_headers,
    verify,
)

SECRET = "shared-secret"
PAYLOAD = b'{"type":"started","started":{"token":"abc"}}'
RANDOM = "r" * 32

# ------------------------------------------------------------------ room ids


@pytest.mark.parametrize(
    ("name", "prefix"),
    [
        ("Weekly Sync!", "weekly-sync-"),
        ("weekly sync", "weekly-sync-"),
        ("  --Team   Stand-up--  ", "team-stand-up-"),
        ("Q3 / Planning & Review", "q3-planning-review-"),
        ("Café Ünïcode", "caf-n-code-"),
        ("123", "123-"),
        ("", "room-"),
        ("!!!", "room-"),
        ("---", "room-"),
        ("日本語", "room-"),
    ],
)
def test_room_id_slugs_the_name(name: str, prefix: str) -> None:
    room_id = new_room_id(name)
    assert room_id.startswith(prefix)
    assert re.fullmatch(r"[a-z0-9]{8}", room_id.removeprefix(prefix))


@pytest.mark.parametrize(
    "name",
    ["a--b", "a - - b", "Weekly Sync!", "x" * 47 + "-yz", "-", "a" * 200, "a" * 47 + " " + "b" * 10, "!@#$%^&*()"],
)
def test_room_id_never_contains_double_dash(name: str) -> None:
    for _ in range(20):
        room_id = new_room_id(name)
        assert "--" not in room_id
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", room_id)


def test_long_names_are_shortened() -> None:
    room_id = new_room_id("a" * 500)
    assert room_id.startswith("a" * 48 + "-")
    assert len(room_id) == 48 + 1 + 8


def test_room_ids_are_unique() -> None:
    ids = {new_room_id("Weekly Sync") for _ in range(1000)}
    assert len(ids) == 1000


# ------------------------------------------------------------------ recording ids


@pytest.mark.parametrize("name", ["Weekly Sync!", "", "a" * 200, "a--b"])
def test_recording_id_matches_pattern_and_names_its_room(name: str) -> None:
    room_id = new_room_id(name)
    recording_id = new_recording_id(room_id)
    match = RECORDING_ID.match(recording_id)
    assert match is not None
    assert match["room"] == room_id
    assert recording_id.startswith(f"{room_id}--EG_")


def test_recording_ids_are_unique() -> None:
    room_id = new_room_id("Weekly Sync")
    ids = {new_recording_id(room_id) for _ in range(1000)}
    assert len(ids) == 1000
    assert all(RECORDING_ID.match(i)["room"] == room_id for i in ids)  # type: ignore[index]


# ------------------------------------------------------------------ signing


def test_checksum_is_hmac_sha256_over_random_and_payload() -> None:
    expected = hmac.new(b"shared-secret", RANDOM.encode() + PAYLOAD, hashlib.sha256).hexdigest()
    assert checksum(SECRET, RANDOM, PAYLOAD) == expected
    assert re.fullmatch(r"[0-9a-f]{64}", expected)


def test_checksum_depends_on_every_input() -> None:
    base = checksum(SECRET, RANDOM, PAYLOAD)
    assert checksum("other", RANDOM, PAYLOAD) != base
    assert checksum(SECRET, "s" * 32, PAYLOAD) != base
    assert checksum(SECRET, RANDOM, PAYLOAD + b" ") != base


def test_signed_headers_verify() -> None:
    headers = signed_headers(SECRET, PAYLOAD)
    assert set(headers) == {RANDOM_HEADER, CHECKSUM_HEADER}
    assert len(headers[RANDOM_HEADER]) >= MIN_RANDOM_LENGTH
    expected = hmac.new(SECRET.encode(), headers[RANDOM_HEADER].encode() + PAYLOAD, hashlib.sha256).hexdigest()
    assert headers[CHECKSUM_HEADER] == expected
    assert verify(SECRET, headers[RANDOM_HEADER], headers[CHECKSUM_HEADER], PAYLOAD)


def test_signed_headers_use_a_fresh_random_each_time() -> None:
    first, second = signed_headers(SECRET, PAYLOAD), signed_headers(SECRET, PAYLOAD)
    assert first[RANDOM_HEADER] != second[RANDOM_HEADER]
    assert first[CHECKSUM_HEADER] != second[CHECKSUM_HEADER]


def test_verify_rejects_wrong_secret() -> None:
    headers = signed_headers(SECRET, PAYLOAD)
    assert not verify("wrong-secret", headers[RANDOM_HEADER], headers[CHECKSUM_HEADER], PAYLOAD)


def test_verify_rejects_tampered_payload() -> None:
    headers = signed_headers(SECRET, PAYLOAD)
    tampered = PAYLOAD.replace(b"abc", b"abd")
    assert not verify(SECRET, headers[RANDOM_HEADER], headers[CHECKSUM_HEADER], tampered)


def test_verify_rejects_a_different_random() -> None:
    headers = signed_headers(SECRET, PAYLOAD)
    assert not verify(SECRET, "0" * 64, headers[CHECKSUM_HEADER], PAYLOAD)


def test_verify_rejects_short_random_even_with_a_correct_checksum() -> None:
    short = "r" * (MIN_RANDOM_LENGTH - 1)
    assert not verify(SECRET, short, checksum(SECRET, short, PAYLOAD), PAYLOAD)
    exact = "r" * MIN_RANDOM_LENGTH
    assert verify(SECRET, exact, checksum(SECRET, exact, PAYLOAD), PAYLOAD)


@pytest.mark.parametrize(
    ("random", "given"), [(None, "x" * 64), ("", "x" * 64), (RANDOM, None), (RANDOM, ""), (None, None)]
)
def test_verify_rejects_missing_values(random: str | None, given: str | None) -> None:
    if given:
        given = checksum(SECRET, RANDOM, PAYLOAD)
    assert not verify(SECRET, random, given, PAYLOAD)


def test_verify_accepts_uppercase_hex_checksum() -> None:
    given = checksum(SECRET, RANDOM, PAYLOAD).upper()
    assert given != checksum(SECRET, RANDOM, PAYLOAD)
    assert verify(SECRET, RANDOM, given, PAYLOAD)


def test_verify_rejects_truncated_checksum() -> None:
    assert not verify(SECRET, RANDOM, checksum(SECRET, RANDOM, PAYLOAD)[:-1], PAYLOAD)


def test_verify_over_a_room_token_payload() -> None:
    token = b"room-token-abc"
    headers = signed_headers(SECRET, token)
    assert verify(SECRET, headers[RANDOM_HEADER], headers[CHECKSUM_HEADER], token)
    assert not verify(SECRET, headers[RANDOM_HEADER], headers[CHECKSUM_HEADER], b"other-token")
