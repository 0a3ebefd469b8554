"""What every benchmark group shares: the result type, percentiles, ratios, timers and RSS sampling.

Ratios are always "higher is better": ``ours / direct`` for figures where higher is better (throughput),
``direct / ours`` for figures where lower is better (latency, memory). A ratio of 1.0 means callrec costs
nothing over the direct path; 0.5 means it delivers half the throughput, or takes twice the time.

A target is a short string, checked by :func:`target_met` unless the result sets ``met`` itself:

* ``ratio >= X``  -- the ratio as defined above is at least X;
* ``<= Nx``       -- ours is at most N times direct (a slowdown bound, for lower-is-better figures);
* ``<= N [unit]`` / ``>= N [unit]`` -- an absolute bound on ours.

Anything else is reported as "?" (not checked).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx

__all__ = [
    "BenchResult",
    "CpuMeter",
    "MiB",
    "PeakRss",
    "Timer",
    "compute_ratio",
    "mb_per_s",
    "percentile",
    "rss_bytes",
    "target_met",
    "text_table",
]

MiB = 1 << 20
MB = 1_000_000


def compute_ratio(ours: float, direct: float | None, better: Literal["higher", "lower"]) -> float | None:
    """ours/direct when higher is better, direct/ours when lower is better: so a higher ratio is always better."""
    if direct is None or not math.isfinite(ours) or not math.isfinite(direct):
        return None
    if better == "higher":
        return ours / direct if direct > 0 else None
    return direct / ours if ours > 0 else None


_RATIO = re.compile(r"^\s*ratio\s*>=\s*([0-9.]+)\s*$")
_SLOWDOWN = re.compile(r"^\s*<=\s*([0-9.]+)\s*x\s*$")
_ABS = re.compile(r"^\s*(<=|>=)\s*([0-9.]+)\s*[A-Za-z/%]*\s*$")


def target_met(result: BenchResult) -> bool | None:
    """Whether ``result`` meets its target string (see the module docstring); None when it cannot be told."""
    target = result.target
    if m := _RATIO.match(target):
        return None if result.ratio is None else result.ratio >= float(m[1])
    if m := _SLOWDOWN.match(target):
        if result.direct is None or result.direct <= 0:
            return None
        return result.ours / result.direct <= float(m[1])
    if m := _ABS.match(target):
        bound = float(m[2])
        return result.ours <= bound if m[1] == "<=" else result.ours >= bound
    return None


@dataclass
class BenchResult:
    """One figure. ``direct`` is the same work done without callrec (None: there is no such twin).

    ``store`` names the object store it ran against ("s3", "local"; empty when it does not apply);
    ``met`` overrides the check of ``target`` when the rule is more than one bound.
    """

    name: str
    ours: float
    direct: float | None
    unit: str
    better: Literal["higher", "lower"]
    target: str
    note: str = ""
    store: str = ""
    met: bool | None = field(default=None)

    def __post_init__(self) -> None:
        if self.better not in ("higher", "lower"):
            raise ValueError(f"better must be 'higher' or 'lower', not {self.better!r}")
        if self.met is None:
            self.met = target_met(self)

    @property
    def ratio(self) -> float | None:
        return compute_ratio(self.ours, self.direct, self.better)

    @property
    def key(self) -> str:
        return f"{self.name}@{self.store}" if self.store else self.name

    def to_json(self) -> dict[str, object]:
        ratio = self.ratio
        return {
            "ours": round(self.ours, 4),
            "direct": None if self.direct is None else round(self.direct, 4),
            "ratio": None if ratio is None else round(ratio, 4),
            "unit": self.unit,
            "better": self.better,
            "target": self.target,
            "met": self.met,
            "note": self.note,
        }


def text_table(rows: list[tuple[str, ...]]) -> str:
    """``rows`` (the first one the header) as left-aligned columns, a rule under the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def percentile(values: Iterable[float], p: float) -> float:
    """The p-th percentile (0..100) with linear interpolation between closest ranks."""
    data = sorted(values)
    if not data:
        raise ValueError("no values")
    if len(data) == 1:
        return data[0]
    rank = (len(data) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (rank - low)


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def mb_per_s(nbytes: int, seconds: float) -> float:
    """Decimal megabytes per second."""
    return nbytes / MB / seconds if seconds > 0 else float("inf")


class Timer:
    """``with Timer() as t: ...`` then ``t.elapsed`` in seconds (perf_counter)."""

    def __init__(self) -> None:
        self.start = 0.0
        self.elapsed = 0.0

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *_: object) -> None:
        self.elapsed = time.perf_counter() - self.start


_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes(pid: int) -> int:
    """Resident set size of process ``pid`` (from /proc/<pid>/statm)."""
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE


class PeakRss:
    """Samples the RSS of process ``pid`` in a thread every ``interval`` s while in use.

    ``growth`` is the peak above the RSS when sampling started (bytes); ``growth_mb`` in MiB.
    """

    def __init__(self, pid: int, interval: float = 0.005) -> None:
        self.pid = pid
        self.interval = interval
        self.start = self.peak = rss_bytes(pid)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, name=f"rss-{pid}", daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(self.interval):
            try:
                self.peak = max(self.peak, rss_bytes(self.pid))
            except OSError:
                return  # the process went away

    def __enter__(self) -> PeakRss:
        self.start = self.peak = rss_bytes(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()
        try:
            self.peak = max(self.peak, rss_bytes(self.pid))
        except OSError:
            pass

    @property
    def growth(self) -> int:
        return self.peak - self.start

    @property
    def growth_mb(self) -> float:
        return self.growth / MiB


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds each named process spent between `start()` and `stop()`: where the time of a run went."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.before: dict[str, float] = {}
        self.spent: dict[str, float] = {}

    def start(self) -> None:
        self.before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def stop(self) -> str:
        for name, pid in self.pids.items():
            self.spent[name] = self.spent.get(name, 0.0) + cpu_seconds(pid) - self.before[name]
        return ", ".join(f"{name} {seconds:.1f}" for name, seconds in self.spent.items())

    def __enter__(self) -> CpuMeter:  # `with meter:` several times adds up
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def per_round(self, rounds: int) -> str:
        return ", ".join(f"{name} {seconds / rounds:.2f}" for name, seconds in self.spent.items())


# ----------------------------------------------------------------------------- processes
# The API (and the worker, Temporal, the S3 server) run as separate processes from the load generator,
# so its CPU and memory figures are the server's own.

VENV_BIN = Path(sys.executable).parent


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A loopback port nothing listens on, never the same one twice in this process: the OS may hand a port
    out again once the probing socket is closed, and two servers given one port collide."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def spawn(argv: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``argv`` with its output in ``log``, in its own process group."""
    log.parent.mkdir(parents=True, exist_ok=True)
    out = log.open("ab")
    try:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    finally:
        out.close()


def stop_process(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """SIGTERM the process (by its pid) and wait; SIGKILL if it does not exit in time."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


async def wait_http(url: str, process: subprocess.Popen[bytes] | None = None, timeout: float = 60) -> None:
    """Until ``url`` answers anything over HTTP; fails early if ``process`` exits."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as http:
        while True:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"{process.args!r} exited with {process.returncode} before {url} answered")
            with contextlib.suppress(httpx.HTTPError):
                await http.get(url)
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not come up within {timeout} s")
            await asyncio.sleep(0.1)


class Moto:
    """moto's S3 server on loopback, in its own process (objects live in its memory)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.endpoint = f"127.0.0.1:{self.port}"
        self.process = spawn(
            [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)], workdir / "logs" / "moto.log"
        )

    async def ready(self) -> None:
        await wait_http(f"http://{self.endpoint}/", self.process)

    def stop(self) -> None:
        stop_process(self.process)


class Temporal:
    """A Temporal dev server (as `callrec dev` runs it), in-memory ports chosen free."""

    def __init__(self, workdir: Path) -> None:
        from callrec.dev import temporal_argv
        from callrec.domain.settings import Settings

        workdir.mkdir(parents=True, exist_ok=True)
        self.address = f"127.0.0.1:{free_port()}"
        settings = Settings(data_dir=workdir, temporal_address=self.address, temporal_ui_port=free_port())
        self.process = spawn(temporal_argv(settings), workdir / "logs" / "temporal.log")
        self._settings = settings

    async def ready(self) -> None:
        from callrec.dev import wait_for_temporal

        if self.process.poll() is not None:
            raise RuntimeError("the Temporal dev server exited; see its log")
        await wait_for_temporal(self._settings)

    def stop(self) -> None:
        stop_process(self.process)


# ----------------------------------------------------------------------------- profiling

PROFILE_DIR: Path | None = None  # set by `--profile DIR`: each profiled step writes DIR/<label>.txt


@contextlib.contextmanager
def profiled(pid: int, label: str) -> Iterator[None]:
    """py-spy samples process ``pid`` (all threads, idle included) while in use, as collapsed stacks
    (open them in speedscope.app, or `flamegraph.pl` them into an SVG).

    Does nothing unless a profile directory was asked for. Figures measured while profiling run slower.
    """
    if PROFILE_DIR is None:
        yield
        return
    PROFILE_DIR.mkdir(parents=True, exist_ok=True)
    out = PROFILE_DIR / f"{label}.txt"
    argv = [str(VENV_BIN / "py-spy"), "record", "--pid", str(pid), "--threads", "--nonblocking", "--rate", "250"]
    argv += ["--format", "raw"]
    spy = spawn([*argv, "--output", str(out)], PROFILE_DIR / "py-spy.log")
    time.sleep(0.5)  # attached before the work starts
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        try:
            spy.wait(timeout=60)
        except subprocess.TimeoutExpired:
            spy.kill()
        print(f"    profile: {out}", flush=True)
