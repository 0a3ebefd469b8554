"""`callrec dev`: the whole stack on one machine, each part its own child process, until Ctrl-C.

It refuses to start broken. Before anything starts, every port it will listen on is checked: a busy one is
named with the setting that moves it, and nothing is left running. A Temporal server already answering on
Temporal's port is used only when `CALLREC_TEMPORAL_ADDRESS` was set to point at it; otherwise `callrec dev`
starts its own dev server (SQLite file under the data dir, web UI). Then the worker, the API and the built-in
recorder, and "up" is printed once each answers its health check: the API's `/health`, the recorder's, and a
worker polling the task queue. A child that dies afterwards is restarted with backoff. Ctrl-C (or SIGTERM,
SIGHUP) stops every part: SIGTERM (the recorder's first, so that its drain still reaches the API, Temporal's last),
then SIGKILL for what is still running after the grace period. The children
run in their own process group, so the terminal's Ctrl-C reaches only this supervisor. Each part's log lines
start with its name (`api`, `worker`, `recorder`); the Temporal dev server's are relayed as `temporal`.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
from temporalio.client import Client

from callrec import logs
from callrec.domain.recording import SEARCH_ATTRIBUTES
from callrec.domain.settings import DEV_API_KEY, Settings, local_url
from callrec.storage.catalog import migrate
from callrec.storage.dev_stack import stack_file, write_stack
from callrec.storage.private import kept_secret
from callrec.temporal import bundled_binary, connect, workflow_pollers

READY_TIMEOUT_S = 90.0  # from the first child started to "up"
PROBE_TIMEOUT_S = 3.0
RECORDER_FIRST_S = 1.0  # the recorder's SIGTERM comes first, and this long before the others'
STOP_GRACE_S = 2.5  # from the recorder's SIGTERM, this long for the callrec parts, then Temporal gets its SIGTERM
TEMPORAL_GRACE_S = 1.5  # ... and this long before SIGKILL: every part is gone within 5 s of Ctrl-C
MAX_BACKOFF_S = 30.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class DevRefused(Exception):
    """`callrec dev` cannot run as configured; each line of the message says what to change."""


class Stopped(Exception):
    """Ctrl-C (or SIGTERM) arrived before the stack was up."""


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = field(default=0.0)
    restart_at: float | None = None
    relay: Callable[[IO[bytes]], None] | None = None  # reads its output (else it goes to the terminal as it is)

    def start(self) -> None:
        # Its own process group: the terminal's Ctrl-C reaches the supervisor, which stops the children in order.
        output = subprocess.PIPE if self.relay else None
        self.process = subprocess.Popen(
            self.argv, env=self.env, process_group=0, stdout=output, stderr=subprocess.STDOUT if output else None
        )
        if self.relay is not None:
            assert self.process.stdout is not None
            threading.Thread(target=self.relay, args=(self.process.stdout,), daemon=True).start()
        self.started_at = time.monotonic()
        self.restart_at = None

    def exit_code(self) -> int | None:
        """The exit status once it has exited (or was never started: -1), else None."""
        return -1 if self.process is None else self.process.poll()

    def terminate(self) -> None:
        if self.exit_code() is None:
            assert self.process is not None
            self.process.terminate()

    def kill(self) -> None:
        if self.exit_code() is None:
            assert self.process is not None
            self.process.kill()
            self.process.wait()


def dev_secret(settings: Settings) -> str:
    """The recording secret shared with the children: the configured one, else one kept in the data dir."""
    return settings.recording_secret or kept_secret(settings.data_dir, "recording-secret")


def dev_token_secret(settings: Settings) -> str:
    """The access-token secret for the children: the configured one, else one kept in the data dir."""
    return settings.token_secret or kept_secret(settings.data_dir, "token-secret")


def dev_publish_secret(settings: Settings) -> str:
    """The WHIP publish-token secret shared by the API and the recorder: configured, else kept in the data dir."""
    return settings.publish_secret or kept_secret(settings.data_dir, "publish-secret")


def dev_metrics_token(settings: Settings) -> str:
    """The token /metrics asks for: the configured one, else one kept in the data dir."""
    return settings.metrics_token or kept_secret(settings.data_dir, "metrics-token")


_TEMPORAL_TIME = re.compile(r"^time=\S+\s*")
_TEMPORAL_LEVEL = re.compile(r"\blevel=(\w+)\s*")


def relay_temporal(output: IO[bytes]) -> None:
    """The dev server's log lines (`time=... level=... msg=...`) as callrec's own, from the process `temporal`."""
    log = logs.get_logger("temporal")
    for raw in output:
        line = raw.decode(errors="replace").rstrip()
        if not line:
            continue
        level = _TEMPORAL_LEVEL.search(line)
        name = {"debug": "debug", "warn": "warning", "error": "error"}.get(level[1].lower() if level else "", "info")
        text = _TEMPORAL_LEVEL.sub("", _TEMPORAL_TIME.sub("", line), count=1)
        log.log(logging.getLevelName(name.upper()), text, process="temporal")


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    try:
        return host.strip("[]") or "127.0.0.1", int(port)
    except ValueError:
        raise DevRefused(f"CALLREC_TEMPORAL_ADDRESS is {address!r}: set it to host:port") from None


def temporal_argv(settings: Settings) -> list[str]:
    host, port = split_address(settings.temporal_address)
    argv = [
        bundled_binary("temporal"),
        "server",
        "start-dev",
        "--db-filename",
        str(settings.data_dir / "temporal.db"),
        "--ip",
        host,
        "--port",
        str(port),
        "--ui-port",
        str(settings.temporal_ui_port),
        "--namespace",
        settings.temporal_namespace,
        "--log-level",
        "error",  # not its warnings about clients that go away while it stops
    ]  # its HTTP API and metrics ports are random free ones, so they cannot collide
    for attribute in SEARCH_ATTRIBUTES:
        argv += ["--search-attribute", f"{attribute.name}=Keyword"]
    return argv


# --- before anything starts: ports and an existing Temporal ---------------------------------------------------


@dataclass(frozen=True)
class Listener:
    what: str
    host: str
    port: int
    setting: str


def listeners(settings: Settings, own_temporal: bool) -> list[Listener]:
    """Every host:port `callrec dev` will listen on, with the setting that moves it."""
    parts = [
        Listener("API", settings.api_host, settings.api_port, "CALLREC_API_PORT"),
        Listener("recorder", settings.recorder_host, settings.recorder_port, "CALLREC_RECORDER_PORT"),
    ]
    if settings.worker_metrics_port:
        host, port = settings.worker_metrics_host, settings.worker_metrics_port
        parts.append(Listener("worker's metrics", host, port, "CALLREC_WORKER_METRICS_PORT"))
    if settings.temporal_metrics_port:
        host, port = settings.worker_metrics_host, settings.temporal_metrics_port
        parts.append(Listener("Temporal SDK metrics", host, port, "CALLREC_TEMPORAL_METRICS_PORT"))
    if own_temporal:
        host, port = split_address(settings.temporal_address)
        parts += [
            Listener("Temporal", host, port, "CALLREC_TEMPORAL_ADDRESS"),
            Listener("Temporal UI", host, settings.temporal_ui_port, "CALLREC_TEMPORAL_UI_PORT"),
        ]
    return parts


def bind_error(host: str, port: int) -> OSError | None:
    """None when something could listen on host:port now, else why not (EADDRINUSE: something does)."""
    try:
        addresses = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        return OSError(errno.EADDRNOTAVAIL, f"cannot resolve {host!r}: {err.strerror}")
    error: OSError | None = None
    bound = False
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is no owner
            try:
                sock.bind(address)
                bound = True
            except OSError as err:
                if err.errno == errno.EADDRINUSE:
                    return err
                error = err
    return None if bound else error


def port_problems(planned: list[Listener]) -> list[str]:
    """One line per port that cannot be listened on, naming the setting to change."""
    problems: list[str] = []
    seen: dict[int, Listener] = {}
    for part in planned:
        if part.port in seen:
            first = seen[part.port]
            problems.append(
                f"port {part.port} is set for both the {first.what} ({first.setting}) and the {part.what}: "
                f"set {part.setting} to another port"
            )
            continue
        seen[part.port] = part
        err = bind_error(part.host, part.port)
        if err is None:
            continue
        if err.errno == errno.EADDRINUSE:
            problems.append(f"port {part.port} is in use: set {part.setting} to a free port")
        else:
            problems.append(
                f"the {part.what} cannot listen on {part.host}:{part.port} ({err.strerror}): set {part.setting}"
            )
    return problems


async def temporal_answers(settings: Settings) -> bool:
    try:
        client = await asyncio.wait_for(connect(settings), PROBE_TIMEOUT_S)
        await asyncio.wait_for(client.service_client.check_health(), PROBE_TIMEOUT_S)
    except Exception:  # noqa: BLE001 - whatever failed, no Temporal answers there
        return False
    return True


async def wait_for_temporal(settings: Settings, timeout_s: float = 60.0) -> None:
    """Until the Temporal at `CALLREC_TEMPORAL_ADDRESS` answers its health check (benchmarks and chaos tests)."""
    deadline = time.monotonic() + timeout_s
    while not await temporal_answers(settings):
        if time.monotonic() > deadline:
            raise TimeoutError(f"Temporal did not answer at {settings.temporal_address} within {timeout_s:.0f} s")
        await asyncio.sleep(0.2)


async def starts_own_temporal(settings: Settings) -> bool:
    """False when a Temporal that `CALLREC_TEMPORAL_ADDRESS` points at on purpose answers (dev uses it); True when
    dev starts its own; DevRefused when the port is taken by anything else, or by a Temporal nobody asked for."""
    address = settings.temporal_address
    host, port = split_address(address)
    err = bind_error(host, port)
    if err is None:
        return True
    explicit = "temporal_address" in settings.model_fields_set
    if await temporal_answers(settings):
        if explicit:
            return False
        raise DevRefused(
            f"a Temporal server already answers on port {port} (another callrec dev?): stop it, or set "
            f"CALLREC_TEMPORAL_ADDRESS={address} to use that one, or set CALLREC_TEMPORAL_ADDRESS to a free port"
        )
    if err.errno == errno.EADDRINUSE:
        raise DevRefused(f"port {port} is in use: set CALLREC_TEMPORAL_ADDRESS to an address with a free port")
    raise DevRefused(
        f"no Temporal answers at {address}, and callrec dev cannot start one there ({err.strerror}): "
        "set CALLREC_TEMPORAL_ADDRESS"
    )


# --- start-up: each part answers its health check before "up" -------------------------------------------------


async def _worker_polling(client: Client, settings: Settings, worker: Child) -> bool:
    """Whether the worker child polls the task queue (its SDK identity is `pid@host`: not a stale poller
    of an earlier run, which Temporal lists for minutes, nor another worker on a shared server)."""
    pollers = await workflow_pollers(client, settings.task_queue, PROBE_TIMEOUT_S)
    pid = worker.process.pid if worker.process else None
    return any(poller.identity.startswith(f"{pid}@") for poller in pollers)


async def _answers(http: httpx.AsyncClient, url: str) -> bool:
    try:
        return (await http.get(url)).status_code == 200
    except httpx.HTTPError:
        return False


class Startup:
    """Waits for one part after another, watching for Ctrl-C, a child that exits, and the deadline."""

    def __init__(self, children: list[Child], stop: asyncio.Event) -> None:
        self.children = children
        self.stop = stop
        self.deadline = time.monotonic() + READY_TIMEOUT_S

    async def until(self, what: str, check: Callable[[], Awaitable[bool]]) -> None:
        while True:
            if self.stop.is_set():
                raise Stopped
            for child in self.children:
                code = child.exit_code()
                if child.process is not None and code is not None:
                    raise DevRefused(f"the {child.name} exited with status {code} before it was up (see its output)")
            try:
                if await asyncio.wait_for(check(), PROBE_TIMEOUT_S + 1):
                    return
            except Exception:  # noqa: BLE001, S110 - not answering yet
                pass
            if time.monotonic() > self.deadline:
                raise DevRefused(f"the {what} did not answer within {READY_TIMEOUT_S:g} s")
            try:
                await asyncio.wait_for(self.stop.wait(), 0.25)
            except TimeoutError:
                pass


async def bring_up(settings: Settings, temporal: Child | None, parts: list[Child], stop: asyncio.Event) -> None:
    watched = [temporal] if temporal else []
    if temporal:
        temporal.start()
    startup = Startup(watched, stop)
    await startup.until("Temporal server", lambda: temporal_answers(settings))
    for part in parts:
        part.start()
    startup.children = [*watched, *parts]
    client = await connect(settings)
    worker = next(part for part in parts if part.name == "worker")
    async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S) as http:
        api = local_url(settings.api_host, settings.api_port)
        recorder = local_url(settings.recorder_host, settings.recorder_port)
        await startup.until("worker (polling the task queue)", lambda: _worker_polling(client, settings, worker))
        await startup.until(f"recorder ({recorder}/health)", lambda: _answers(http, f"{recorder}/health"))
        await startup.until(f"API ({api}/health)", lambda: _answers(http, f"{api}/health"))


async def supervise(children: list[Child], stop: asyncio.Event) -> None:
    """Restarts a child that exits (backoff doubling to MAX_BACKOFF_S) until `stop` is set."""
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), 0.5)
            return
        except TimeoutError:
            pass
        now = time.monotonic()
        for child in children:
            code = child.exit_code()
            if code is None:
                continue
            if child.restart_at is None:
                if now - child.started_at > 60:
                    child.restarts = 0
                delay = min(2**child.restarts, MAX_BACKOFF_S)
                child.restarts += 1
                child.restart_at = now + delay
                print(f"callrec dev: {child.name} exited with {code}; restarting in {delay:g} s", flush=True)
            elif now >= child.restart_at:
                child.start()


async def stop_all(parts: list[Child], temporal: Child | None) -> None:
    """SIGTERM to the recorder first, while the API it reports its draining to still answers; to the other callrec
    parts once it is gone (or after RECORDER_FIRST_S); to Temporal once they are all gone (or STOP_GRACE_S after the
    first SIGTERM); SIGKILL for anything still running after TEMPORAL_GRACE_S more."""

    async def wait(children: list[Child], grace_s: float) -> None:
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(child.exit_code() is None for child in children):
            await asyncio.sleep(0.05)

    start = time.monotonic()
    recorder = [child for child in parts if child.name == "recorder"]
    for child in recorder:
        child.terminate()
    await wait(recorder, RECORDER_FIRST_S)
    for child in parts:
        child.terminate()
    await wait(parts, STOP_GRACE_S - (time.monotonic() - start))
    if temporal:
        temporal.terminate()
    everything = [*parts, *([temporal] if temporal else [])]
    await wait(everything, TEMPORAL_GRACE_S)
    for child in everything:
        child.kill()


def _metrics_lines(settings: Settings, token: str) -> str:
    """Where `make dev` says the metrics are (and the token they ask for)."""
    served = [f"{local_url(settings.api_host, settings.api_port)}/metrics (API)",
              f"{local_url(settings.recorder_host, settings.recorder_port)}/metrics (recorder)"]  # fmt: skip
    if settings.worker_metrics_port:
        served.append(f"{local_url(settings.worker_metrics_host, settings.worker_metrics_port)}/metrics (worker)")
    lines = "".join(f"  {'metrics' if i == 0 else '':<15}{url}\n" for i, url in enumerate(served))
    lines += f"  {'':<15}(Authorization: Bearer {token})\n" if not settings.metrics_public else ""
    if settings.temporal_metrics_port:
        sdk = local_url(settings.worker_metrics_host, settings.temporal_metrics_port)
        lines += f"  {'SDK metrics':<15}{sdk}/metrics  (the worker's Temporal SDK, temporal_*)\n"
    return lines


def _up_message(settings: Settings, api_key: str, own_temporal: bool, metrics_token: str) -> str:
    api = local_url(settings.api_host, settings.api_port)
    recorder = local_url(settings.recorder_host, settings.recorder_port)
    host, _ = split_address(settings.temporal_address)
    ui = (
        f"  Temporal UI    {local_url(host, settings.temporal_ui_port)}\n"
        if own_temporal
        else "  Temporal       not started: using the one at CALLREC_TEMPORAL_ADDRESS\n"
    )
    return (
        "\ncallrec dev is up:\n"
        f"  console        {api}/console  (sign in with the API key below)\n"
        f"  API            {api}  (X-API-KEY: {api_key})\n"
        f"  health         {api}/health\n"
        f"  publish page   {api}/rooms/<roomId>/publish  (with a token of POST /api/v1/rooms/<roomId>/publish-token)\n"
        f"  recorder       {recorder}\n"
        f"  callbacks      {settings.backend_url}  (CALLREC_API_URL / CALLREC_PUBLIC_URL)\n"
        f"{_metrics_lines(settings, metrics_token)}"
        f"{ui}"
        f"  Temporal gRPC  {settings.temporal_address}\n"
        f"  data           {settings.data_dir.resolve()}\n"
        f"{_cli_hint()}"
        "Ctrl-C stops everything.\n"
    )


def _cli_hint() -> str:
    """How to run the operator CLI from another shell: `callrec` itself when it is on PATH, else its path."""
    script = Path(sys.executable).parent / "callrec"
    if not script.exists():
        return ""
    found = shutil.which("callrec")
    if found is not None and Path(found).resolve() == script.resolve():
        return "  operator CLI   callrec ops list  (from any directory: it finds this stack)\n"
    return (
        f"  operator CLI   {script} ops list  (from any directory: it finds this stack)\n"
        f'                 put it on PATH: export PATH="{script.parent}:$PATH"  (or: source {script.parent}/activate)\n'
    )


def record_stack(settings: Settings) -> None:
    """Where this stack runs, for `callrec ops` and `callrec consent` started from any directory."""
    try:
        write_stack(
            {
                "data_dir": str(settings.data_dir.resolve()),
                "database_url": settings.database_url,
                "temporal_address": settings.temporal_address,
                "temporal_namespace": settings.temporal_namespace,
                "temporal_ui_url": settings.temporal_ui_url,
                "api_url": settings.api_url,
            }
        )
    except OSError as err:  # a read-only home: the CLI then needs CALLREC_DATA_DIR, nothing else changes
        print(f"callrec dev: cannot record where the stack runs in {stack_file()}: {err.strerror or err}", flush=True)


async def _run(settings: Settings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    try:
        own_temporal = await starts_own_temporal(settings)
        problems = port_problems(listeners(settings, own_temporal))
        if problems:
            raise DevRefused("\n".join(problems))
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        await migrate(settings)
        api_key = settings.api_key or DEV_API_KEY
        env = dict(os.environ) | {
            "CALLREC_API_KEY": api_key,
            "CALLREC_RECORDING_SECRET": dev_secret(settings),
            "CALLREC_TOKEN_SECRET": dev_token_secret(settings),
            "CALLREC_PUBLISH_SECRET": dev_publish_secret(settings),
            "CALLREC_METRICS_TOKEN": dev_metrics_token(settings),
            "CALLREC_DATA_DIR": str(settings.data_dir.resolve()),
            "CALLREC_API_URL": settings.api_url,
            "CALLREC_RECORDER_URL": settings.recorder_url,
            "CALLREC_DEV_MODE": "true",
        }
    except DevRefused as err:
        for line in str(err).splitlines():
            print(f"callrec dev: {line}", file=sys.stderr, flush=True)
        return 1
    me = [sys.executable, "-m", "callrec.cli"]
    temporal = Child("Temporal server", temporal_argv(settings), env, relay=relay_temporal) if own_temporal else None
    parts = [Child(name, [*me, name], env) for name in ("worker", "api", "recorder")]
    status = 0
    try:
        await bring_up(settings, temporal, parts, stop)
        if own_temporal:  # Temporal creates its database with the umask's mode (in the 0700 data dir)
            for path in settings.data_dir.glob("temporal.db*"):
                path.chmod(0o600)
        record_stack(settings)
        print(_up_message(settings, api_key, own_temporal, env["CALLREC_METRICS_TOKEN"]), flush=True)
        await supervise([*([temporal] if temporal else []), *parts], stop)
    except Stopped:
        pass
    except DevRefused as err:
        print(f"callrec dev: {err}; stopping", file=sys.stderr, flush=True)
        status = 1
    finally:
        await stop_all(parts, temporal)
        print("callrec dev: stopped", flush=True)
    return status


def run_dev(settings: Settings) -> None:
    status = asyncio.run(_run(settings))
    if status:
        raise SystemExit(status)
