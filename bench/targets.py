"""Issue 21's table of targets, in one place: the groups take their target strings from it, and `bench.run`
prints it at the end of a run beside the issue's "today" figures.

Each row names the figure of `bench/results.json` it is read from. A row whose figure this run did not measure
(another group, or nginx missing) shows "not run".
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

from bench.common import BenchResult, text_table

__all__ = ["TARGETS", "Target", "issue_table", "shown_ratio", "target_of"]


@dataclass(frozen=True)
class Target:
    figure: str  # the issue's words
    today: str  # the issue's "today" column, as filed
    key: str  # the figure in bench/results.json
    target: str  # a target string of bench.common (`ratio >= X` or `<= Nx`)


TARGETS = (
    Target("media throughput, local store, vs nginx serving the same file", "0.54x", "media_vs_nginx@local",
           "ratio >= 0.9"),
    Target("range 64 KiB p50, local store, vs nginx", "2.4x", "range_p50_vs_nginx@local", "<= 1.5x"),
    Target("media throughput, S3, vs the minio client reading directly", "0.81x", "media_throughput@s3",
           "ratio >= 0.9"),
    Target("upload to /store, local, vs direct write", "0.49x", "upload_throughput@local", "ratio >= 0.8"),
    Target("recording lifecycles per second vs a bare workflow with the same activities", "0.49x",
           "lifecycle_throughput", "ratio >= 0.7"),
    Target("start latency p50 vs bare start + update", "2.4x", "start_latency_p50", "<= 2x"),
)  # fmt: skip

_BY_KEY = {t.key: t for t in TARGETS}
_SLOWDOWN = re.compile(r"^\s*<=\s*[0-9.]+\s*x\s*$")


def target_of(key: str) -> str:
    """The target string of the figure ``key`` (``name@store``, or ``name``)."""
    return _BY_KEY[key].target


def _is_slowdown(target: str) -> bool:
    return _SLOWDOWN.match(target) is not None


def shown_ratio(result: BenchResult, target: str) -> str:
    """The figure as the issue's table words it: ``ours/direct`` ("2.4x" slower) under a ``<= Nx`` target, else
    the higher-is-better ratio ("0.54x"); "-" when it cannot be told."""
    if _is_slowdown(target):
        if result.direct is None or result.direct <= 0 or not math.isfinite(result.ours):  # NaN: it failed
            return "-"
        return f"{result.ours / result.direct:.2f}x"
    ratio = result.ratio
    return "-" if ratio is None else f"{ratio:.2f}x"


def _shown_target(target: str) -> str:
    return target.strip() if _is_slowdown(target) else target.replace("ratio", "").strip() + "x"


def issue_table(results: list[BenchResult]) -> str:
    """figure | today | this run | target | met, for every row of TARGETS, from this run's ``results``."""
    found = {r.key: r for r in results}
    rows: list[tuple[str, ...]] = [("figure", "today", "this run", "target", "met")]
    for t in TARGETS:
        result = found.get(t.key)
        if result is None:
            rows.append((t.figure, t.today, "not run", _shown_target(t.target), "-"))
            continue
        ratio = shown_ratio(result, t.target)
        met = dataclasses.replace(result, target=t.target, met=None).met  # checked against this table's target
        verdict = "?" if ratio == "-" else {True: "yes", False: "MISSED", None: "?"}[met]
        rows.append((t.figure, t.today, ratio, _shown_target(t.target), verdict))
    return text_table(rows)
