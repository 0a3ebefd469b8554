"""`callrec dev`: the whole stack on one machine, each part its own child process, until Ctrl-C.

Temporal dev server (SQLite file under the data dir, web UI), then the worker, the API and the
built-in recorder. A child that dies is restarted with backoff; Ctrl-C stops them all.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from callrec.domain.recording import SEARCH_ATTRIBUTES
from callrec.domain.settings import DEV_API_KEY, Settings
from callrec.storage.catalog import migrate
from callrec.temporal import bundled_binary, connect

READY_TIMEOUT_S = 60.0
MAX_BACKOFF_S = 30.0


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = field(default=0.0)

    def start(self) -> None:
        self.process = subprocess.Popen(self.argv, env=self.env)
        self.started_at = time.monotonic()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)


def dev_secret(settings: Settings) -> str:
    """The recording secret shared with the children: the configured one, else one kept in the data dir."""
    if settings.recording_secret:
        return settings.recording_secret
    path = settings.data_dir / "recording-secret"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def temporal_argv(settings: Settings) -> list[str]:
    host, _, port = settings.temporal_address.rpartition(":")
    argv = [
        bundled_binary("temporal"),
        "server",
        "start-dev",
        "--db-filename",
        str(settings.data_dir / "temporal.db"),
        "--ip",
        host or "127.0.0.1",
        "--port",
        port,
        "--ui-port",
        str(settings.temporal_ui_port),
        "--namespace",
        settings.temporal_namespace,
        "--log-level",
        "warn",
    ]
    for attribute in SEARCH_ATTRIBUTES:
        argv += ["--search-attribute", f"{attribute.name}=Keyword"]
    return argv


async def wait_for_temporal(settings: Settings) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            client = await connect(settings)
            await client.service_client.check_health()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


def supervise(children: list[Child]) -> None:
    for child in children:
        if child.process is None:
            child.start()
    while True:
        time.sleep(0.5)
        for child in children:
            assert child.process is not None
            code = child.process.poll()
            if code is None:
                continue
            if time.monotonic() - child.started_at > 60:
                child.restarts = 0
            delay = min(2**child.restarts, MAX_BACKOFF_S)
            child.restarts += 1
            print(f"callrec dev: {child.name} exited with {code}; restarting in {delay:g} s", flush=True)
            time.sleep(delay)
            child.start()


def _stop_requested(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def run_dev(settings: Settings) -> None:
    # Ctrl-C and SIGTERM both stop the stack, whatever the launcher left the signals set to.
    signal.signal(signal.SIGINT, _stop_requested)
    signal.signal(signal.SIGTERM, _stop_requested)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    api_key = settings.api_key or DEV_API_KEY
    env |= {
        "CALLREC_API_KEY": api_key,
        "CALLREC_RECORDING_SECRET": dev_secret(settings),
        "CALLREC_DATA_DIR": str(settings.data_dir.resolve()),
    }
    asyncio.run(migrate(settings))

    temporal = Child("temporal", temporal_argv(settings), env)
    me = [sys.executable, "-m", "callrec.cli"]
    children = [
        Child("worker", [*me, "worker"], env),
        Child("api", [*me, "api"], env),
        Child("recorder", [*me, "recorder"], env),
    ]
    temporal.start()
    try:
        asyncio.run(wait_for_temporal(settings))
        print(
            "\ncallrec dev is up:\n"
            f"  API            http://{settings.api_host}:{settings.api_port}  (X-API-KEY: {api_key})\n"
            f"  health         http://{settings.api_host}:{settings.api_port}/health\n"
            f"  recorder       http://{settings.recorder_host}:{settings.recorder_port}\n"
            f"  Temporal UI    http://127.0.0.1:{settings.temporal_ui_port}\n"
            f"  Temporal gRPC  {settings.temporal_address}\n"
            f"  data           {settings.data_dir.resolve()}\n"
            "Ctrl-C stops everything.\n",
            flush=True,
        )
        supervise([temporal, *children])
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for child in [*children, temporal]:
            child.stop()
        for child in [*children, temporal]:
            if child.process is not None:
                try:
                    child.process.wait(timeout=40)
                except subprocess.TimeoutExpired:
                    child.process.kill()
        print("callrec dev: stopped", flush=True)
