"""Issue 21's table of targets: what `python -m bench.run` prints at its end from a run's results."""

from __future__ import annotations

import re

from bench.common import BenchResult
from bench.targets import TARGETS, issue_table, shown_ratio, target_of


def _row(table: str, figure: str) -> list[str]:
    line = next(line for line in table.splitlines() if line.startswith(figure))
    return re.split(r"\s{2,}", line[len(figure) :].strip())


def test_every_row_of_the_issue_is_there_with_its_target() -> None:
    assert [(t.key, t.target) for t in TARGETS] == [
        ("media_vs_nginx@local", "ratio >= 0.9"),
        ("range_p50_vs_nginx@local", "<= 1.5x"),
        ("media_throughput@s3", "ratio >= 0.9"),
        ("upload_throughput@local", "ratio >= 0.8"),
        ("lifecycle_throughput", "ratio >= 0.7"),
        ("start_latency_p50", "<= 2x"),
    ]
    assert target_of("start_latency_p50") == "<= 2x"


def test_rows_not_measured_show_not_run() -> None:
    table = issue_table([])
    for t in TARGETS:
        assert _row(table, t.figure) == [t.today, "not run", _target_shown(t.target), "-"]


def _target_shown(target: str) -> str:
    return {"ratio >= 0.9": ">= 0.9x", "ratio >= 0.8": ">= 0.8x", "ratio >= 0.7": ">= 0.7x"}.get(target, target)


def test_throughput_shows_ours_over_nginx_and_is_checked() -> None:
    slow = BenchResult("media_vs_nginx", 2230, 4157, "MB/s", "higher", "ratio >= 0.9", store="local")
    fast = BenchResult("media_vs_nginx", 3900, 4000, "MB/s", "higher", "ratio >= 0.9", store="local")
    figure = TARGETS[0].figure
    assert _row(issue_table([slow]), figure) == ["0.54x", "0.54x", ">= 0.9x", "MISSED"]
    assert _row(issue_table([fast]), figure) == ["0.54x", "0.97x", ">= 0.9x", "yes"]


def test_latency_shows_how_many_times_slower_as_the_issue_does() -> None:
    slow = BenchResult("range_p50_vs_nginx", 4.3, 1.8, "ms", "lower", "<= 1.5x", store="local")
    near = BenchResult("range_p50_vs_nginx", 2.0, 1.6, "ms", "lower", "<= 1.5x", store="local")
    figure = TARGETS[1].figure
    assert _row(issue_table([slow]), figure) == ["2.4x", "2.39x", "<= 1.5x", "MISSED"]
    assert _row(issue_table([near]), figure) == ["2.4x", "1.25x", "<= 1.5x", "yes"]


def test_the_table_checks_its_own_target_not_the_one_the_result_carried() -> None:
    old = BenchResult("lifecycle_throughput", 6.0, 10.0, "recordings/s", "higher", "ratio >= 0.5")
    assert old.met is True
    assert _row(issue_table([old]), TARGETS[4].figure)[-2:] == [">= 0.7x", "MISSED"]


def test_a_failed_figure_shows_a_dash_and_no_verdict() -> None:
    failed = BenchResult("start_latency_p50", float("nan"), 40.0, "ms", "lower", "<= 2x")
    assert shown_ratio(failed, "<= 2x") == "-"
    assert _row(issue_table([failed]), TARGETS[5].figure) == ["2.4x", "-", "<= 2x", "?"]
    no_twin = BenchResult("media_throughput", 500.0, None, "MB/s", "higher", "ratio >= 0.9", store="s3")
    assert _row(issue_table([no_twin]), TARGETS[2].figure) == ["0.81x", "-", ">= 0.9x", "?"]
