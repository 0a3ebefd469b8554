"""HTTP `Range: bytes=...` parsing for media downloads: one range, or the whole file, or 416."""

from __future__ import annotations

import pytest

from callrec.api.ranges import ByteRange, RangeNotSatisfiable, parse_range

SIZE = 100


@pytest.mark.parametrize("header", [None, ""])
def test_no_header_serves_the_whole_file(header: str | None) -> None:
    assert parse_range(header, SIZE) is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-0", ByteRange(0, 0)),
        ("bytes=0-9", ByteRange(0, 9)),
        ("bytes=10-19", ByteRange(10, 19)),
        ("bytes=0-99", ByteRange(0, 99)),
        ("bytes=99-99", ByteRange(99, 99)),
        # open-ended: to the last byte
        ("bytes=0-", ByteRange(0, 99)),
        ("bytes=42-", ByteRange(42, 99)),
        ("bytes=99-", ByteRange(99, 99)),
        # suffix: the last n bytes
        ("bytes=-1", ByteRange(99, 99)),
        ("bytes=-10", ByteRange(90, 99)),
        ("bytes=-100", ByteRange(0, 99)),
        ("bytes=-500", ByteRange(0, 99)),
        # an end beyond the file is clamped to the last byte
        ("bytes=0-100", ByteRange(0, 99)),
        ("bytes=50-10000", ByteRange(50, 99)),
        # whitespace is tolerated
        (" bytes=10-19 ", ByteRange(10, 19)),
        ("bytes= 10 - 19", ByteRange(10, 19)),
    ],
)
def test_satisfiable_ranges(header: str, expected: ByteRange) -> None:
    assert parse_range(header, SIZE) == expected


@pytest.mark.parametrize(
    ("header", "length"),
    [("bytes=0-0", 1), ("bytes=0-9", 10), ("bytes=-500", SIZE), ("bytes=90-", 10), ("bytes=50-10000", 50)],
)
def test_length_counts_inclusive_bytes(header: str, length: int) -> None:
    byte_range = parse_range(header, SIZE)
    assert byte_range is not None
    assert byte_range.length == length


@pytest.mark.parametrize(
    ("header", "size"),
    [
        ("bytes=100-", 100),
        ("bytes=100-200", 100),
        ("bytes=1000-1001", 100),
        ("bytes=-0", 100),
        ("bytes=-0", 0),
        # any range on an empty file
        ("bytes=0-", 0),
        ("bytes=0-0", 0),
        ("bytes=0-10", 0),
        ("bytes=-1", 0),
        ("bytes=-10", 0),
    ],
)
def test_unsatisfiable_ranges_raise(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, size)


@pytest.mark.parametrize(
    "header",
    [
        "items=0-1",
        "bytes=x-y",
        "bytes=1-y",
        "bytes=5-2",
        "bytes=0-1,4-5",
        "bytes=0-1, 4-5",
        "bytes=-",
        "bytes=",
        "bytes",
        "0-1",
        "bytes=1.5-2",
        "bytes=--1",
    ],
)
def test_malformed_or_multiple_ranges_serve_the_whole_file(header: str) -> None:
    assert parse_range(header, SIZE) is None


def test_malformed_range_on_an_empty_file_serves_the_whole_file() -> None:
    assert parse_range("bytes=0-1,4-5", 0) is None


@pytest.mark.parametrize(
    "header",
    [
        "bytes=\u0663-",  # ARABIC-INDIC DIGIT THREE: int() takes it, HTTP does not
        "bytes=0-\u0663",
        "bytes=-\u0663",
        "bytes=\uff10-1",  # FULLWIDTH DIGIT ZERO
        "bytes=\u00b2-",  # SUPERSCRIPT TWO: isdigit() is true, int() refuses it
    ],
)
def test_non_ascii_digits_are_not_positions(header: str) -> None:
    assert parse_range(header, SIZE) is None


HUGE = "9" * 5000  # beyond what int() converts (4300 digits)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99999999999999999999999", ByteRange(0, 99)),
        (f"bytes=0-{HUGE}", ByteRange(0, 99)),
        (f"bytes=-{HUGE}", ByteRange(0, 99)),
        (f"bytes={'0' * 40}5-{'0' * 40}9", ByteRange(5, 9)),  # leading zeros are not magnitude
    ],
)
def test_huge_positions_reach_past_the_end(header: str, expected: ByteRange) -> None:
    assert parse_range(header, SIZE) == expected


@pytest.mark.parametrize("header", ["bytes=99999999999999999999999-", f"bytes={HUGE}-", f"bytes={HUGE}-{HUGE}"])
def test_a_huge_start_is_unsatisfiable(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, SIZE)
