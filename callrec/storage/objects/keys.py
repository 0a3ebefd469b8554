"""Object keys and prefixes: what every store accepts (see `callrec.storage.objects.base`)."""

from __future__ import annotations

# Name prefix of in-progress files written next to their final location.
# Keys may not contain a segment starting with it, so listings can skip them.
TMP_PREFIX = ".callrec-tmp-"


def _validate_segment(segment: str, key: str, what: str = "object key") -> None:
    if segment in ("", ".", ".."):
        raise ValueError(f"invalid {what} {key!r}: empty, '.' or '..' segment")
    if segment.startswith(TMP_PREFIX):
        raise ValueError(f"invalid {what} {key!r}: reserved segment name")


def validate_key(key: str) -> None:
    if not isinstance(key, str) or not key:
        raise ValueError("object key must be a non-empty string")
    if key.startswith("/") or "\\" in key or "\x00" in key:
        raise ValueError(f"invalid object key {key!r}: absolute or contains '\\' or NUL")
    for segment in key.split("/"):
        _validate_segment(segment, key)


def validate_prefix(prefix: str) -> None:
    """A prefix is a key whose last segment may be partial (or empty)."""
    if not isinstance(prefix, str):
        raise TypeError("prefix must be a string")
    if prefix.startswith("/") or "\\" in prefix or "\x00" in prefix:
        raise ValueError(f"invalid prefix {prefix!r}: absolute or contains '\\' or NUL")
    for segment in prefix.split("/")[:-1]:
        _validate_segment(segment, prefix, "prefix")


def validate_range(offset: int, length: int | None, chunk_size: int) -> None:
    if offset < 0:
        raise ValueError("offset must be >= 0")
    if length is not None and length < 0:
        raise ValueError("length must be >= 0")
    if chunk_size <= 0:
        raise ValueError("chunk_size must be > 0")
