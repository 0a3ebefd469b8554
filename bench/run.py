"""`python -m bench.run [--quick]`: every benchmark group, a table, and bench/results.json.

Benchmarks report, they do not gate: the exit code is 0 even when a target is missed (those are listed at
the end). It is 1 only when a group could not run at all.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import json
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench import common
from bench.common import BenchResult, text_table
from bench.targets import issue_table

RESULTS = Path(__file__).resolve().parent / "results.json"
# each: async def run(quick: bool, workdir: Path) -> list[BenchResult]
GROUPS = ("bench.media", "bench.offload", "bench.workflows", "bench.uploads", "bench.recorder", "bench.pool")


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def table(results: list[BenchResult]) -> str:
    rows: list[tuple[str, ...]] = [("name", "store", "ours", "direct", "ratio", "unit", "target", "met?")]
    for r in results:
        met = {True: "yes", False: "MISSED", None: "?"}[r.met]
        rows.append((r.name, r.store or "-", _fmt(r.ours), _fmt(r.direct), _fmt(r.ratio), r.unit, r.target, met))
    return text_table(rows)


async def run_groups(quick: bool, workdir: Path, only: list[str] | None) -> tuple[list[BenchResult], list[str]]:
    results: list[BenchResult] = []
    failed: list[str] = []
    for name in GROUPS:
        short = name.rpartition(".")[2]
        if only and short not in only:
            continue
        if importlib.util.find_spec(name) is None:
            print(f"{short}: not present, skipped", flush=True)
            continue
        print(f"{short}:", flush=True)
        started = time.monotonic()
        try:
            module = importlib.import_module(name)
            run: Callable[[bool, Path], Awaitable[list[BenchResult]]] = module.run
            results += await run(quick, workdir / short)
        except Exception:  # noqa: BLE001 - a group that crashes is reported; the others still run
            traceback.print_exc()
            failed.append(short)
        print(f"{short}: {time.monotonic() - started:.0f} s", flush=True)
    return results, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: the whole run in about 5 minutes on 2 cores")
    parser.add_argument(
        "--only",
        action="append",
        help="run only this group (media, offload, workflows, uploads, recorder, pool); may repeat",
    )
    parser.add_argument("--keep", action="store_true", help="keep the working directory (logs, data)")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"where to write the results ({RESULTS})")
    parser.add_argument("--profile", type=Path, help="write py-spy profiles (collapsed stacks) of the servers here")
    args = parser.parse_args(argv)
    if args.profile is not None:
        common.PROFILE_DIR = args.profile.resolve()

    workdir = Path(tempfile.mkdtemp(prefix="callrec-bench-"))
    started = time.monotonic()
    try:
        results, failed = asyncio.run(run_groups(args.quick, workdir, args.only))
    finally:
        if args.keep:
            print(f"working directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    print()
    print(table(results))
    args.output.write_text(json.dumps({r.key: r.to_json() for r in results}, indent=2) + "\n")
    print(f"\n{len(results)} figures in {time.monotonic() - started:.0f} s ({'quick' if args.quick else 'full'} sizes);"
          f" written to {args.output}")  # fmt: skip
    missed = [r.key for r in results if r.met is False]
    if missed:
        print(f"targets MISSED ({len(missed)}): {', '.join(missed)}")
    else:
        print("all checked targets met")
    print("\nissue 21's targets, ratios from this run:")
    print(issue_table(results))
    if failed:
        print(f"groups that failed to run: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
