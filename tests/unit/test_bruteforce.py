"""The recorder endpoints' throttle and the checksum's limits on the random."""

from __future__ import annotations

from callrec.api.bruteforce import Throttle
from callrec.domain import signing


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_address_is_blocked_after_max_failures_until_the_oldest_ages_out() -> None:
    clock = Clock()
    throttle = Throttle(max_failures=3, window_s=60, clock=clock)
    assert [throttle.refused("10.0.0.1") for _ in range(3)] == [None, None, None]  # answered 401/403
    clock.now += 10
    assert throttle.refused("10.0.0.1") == 50  # blocked: 429, Retry-After 50
    assert throttle.retry_after("10.0.0.2") is None  # others are not affected
    clock.now += 50
    assert throttle.retry_after("10.0.0.1") is None  # the first three aged out, one remains
    assert throttle.refused("10.0.0.1") is None


def test_failures_kept_per_address_are_bounded() -> None:
    clock = Clock()
    throttle = Throttle(max_failures=3, window_s=60, clock=clock)
    for _ in range(100_000):
        throttle.failed("10.0.0.1")
    clock.now += 61
    assert throttle.retry_after("10.0.0.1") is None  # all of them aged out with the last three kept
    assert len(throttle) == 0


def test_the_table_is_an_lru_of_at_most_max_addresses() -> None:
    throttle = Throttle(max_failures=2, window_s=60, clock=Clock(), max_addresses=3)
    for address in ("a", "b", "c"):
        throttle.failed(address)
        throttle.failed(address)
    throttle.failed("a")  # a is the most recently seen now; b the least
    throttle.failed("d")
    assert len(throttle) == 3
    assert throttle.retry_after("b") is None  # pushed out, starts again from zero
    assert throttle.retry_after("a") is not None and throttle.retry_after("c") is not None
    for i in range(10_000):
        throttle.failed(f"10.1.{i // 256}.{i % 256}")
    assert len(throttle) == 3


def test_verify_refuses_randoms_and_checksums_out_of_shape_without_raising() -> None:
    secret, payload = "s3cret", b"room-token"
    good = "r" * 64
    assert signing.verify(secret, good, signing.checksum(secret, good, payload), payload)
    for random in ("r" * 31, "r" * 257, "é" * 64, "r" * 63 + "\n"):
        assert not signing.verify(secret, random, signing.checksum(secret, random, payload), payload)
    assert signing.verify(secret, "r" * 256, signing.checksum(secret, "r" * 256, payload), payload)
    assert not signing.verify(secret, good, "²" * 64, payload)  # compare_digest would raise on non-ASCII
    assert not signing.verify(secret, good, None, payload)
    assert not signing.verify(secret, None, signing.checksum(secret, good, payload), payload)
