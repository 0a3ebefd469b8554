"""`callrec dev` as a user runs it: a real subprocess, a temporary data dir, free loopback ports.

It comes up only when every part answers, works end to end with only its ports changed, stops on Ctrl-C
without tracebacks and leaves nothing listening; it refuses a busy port, and a Temporal already on its port
unless CALLREC_TEMPORAL_ADDRESS points at it on purpose.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.common import free_port
from callrec.dev import bind_error
from callrec.domain.recording import SEARCH_ATTRIBUTES
from callrec.domain.settings import DEV_API_KEY
from callrec.temporal import bundled_binary
from tests.helpers import create_room, join, record

UP = "callrec dev is up"
# Runs `callrec dev` with the default Temporal address moved to argv[1], as if a Temporal were on callrec's
# default port (7233) without CALLREC_TEMPORAL_ADDRESS being set: the tests must not take the real 7233.
DEFAULT_ADDRESS_MOVED = """
import sys
import callrec.cli as cli

class Defaulted(cli.Settings):
    temporal_address: str = sys.argv[1]

cli.Settings = Defaulted
cli.main(["dev"])
"""


class Dev:
    """One `callrec dev` process; its output (stdout and stderr) is collected line by line."""

    def __init__(self, tmp_path: Path, argv: list[str] | None = None, **settings: object) -> None:
        self.ports = {
            "api": free_port(),
            "recorder": free_port(),
            "temporal": free_port(),
            "ui": free_port(),
            "worker_metrics": free_port(),
            "temporal_metrics": free_port(),
        }
        env = {name: value for name, value in os.environ.items() if not name.startswith("CALLREC_")}
        env |= {
            "CALLREC_DATA_DIR": str(tmp_path / "data"),
            "CALLREC_API_PORT": str(self.ports["api"]),
            "CALLREC_RECORDER_PORT": str(self.ports["recorder"]),
            "CALLREC_TEMPORAL_ADDRESS": f"127.0.0.1:{self.ports['temporal']}",
            "CALLREC_TEMPORAL_UI_PORT": str(self.ports["ui"]),
            "CALLREC_WORKER_METRICS_PORT": str(self.ports["worker_metrics"]),
            "CALLREC_TEMPORAL_METRICS_PORT": str(self.ports["temporal_metrics"]),
            "CALLREC_TASK_QUEUE": f"dev-{tmp_path.name}",
            "PYTHONUNBUFFERED": "1",
            "XDG_STATE_HOME": str(tmp_path / "state"),  # where it records the stack for `callrec ops`
        }
        env |= {f"CALLREC_{name.upper()}": str(value) for name, value in settings.items() if value is not None}
        for name, value in settings.items():
            if value is None:
                env.pop(f"CALLREC_{name.upper()}", None)
        self.data_dir = tmp_path / "data"
        self.env = env
        self.lines: list[str] = []
        self.health_when_up: int | None = None
        self.up = threading.Event()
        self.process = subprocess.Popen(
            argv or [sys.executable, "-m", "callrec.cli", "dev"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}"

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if UP in line and not self.up.is_set():
                # The moment "up" is printed, the API must already answer its health check.
                try:
                    self.health_when_up = httpx.get(f"{self.api_url}/health", timeout=5).status_code
                except httpx.HTTPError:
                    self.health_when_up = -1
                self.up.set()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_up(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not self.up.wait(0.2):
            assert self.process.poll() is None, f"callrec dev exited with {self.process.returncode}:\n{self.output}"
            assert time.monotonic() < deadline, f"callrec dev not up after {timeout} s:\n{self.output}"

    def finish(self, timeout: float = 30) -> int:
        code = self.process.wait(timeout)
        self.reader.join(5)
        return code

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def dev_runs() -> Iterator[list[Dev]]:
    runs: list[Dev] = []
    yield runs
    for run in runs:
        run.stop()


@pytest.fixture(scope="module")
def other_temporal() -> Iterator[str]:
    """A Temporal dev server that is not callrec dev's own: its address."""
    port = free_port()
    argv = [bundled_binary("temporal"), "server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", str(port),
            "--log-level", "error"]  # fmt: skip
    for attribute in SEARCH_ATTRIBUTES:
        argv += ["--search-attribute", f"{attribute.name}=Keyword"]
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while bind_error("127.0.0.1", port) is None:
        assert time.monotonic() < deadline and server.poll() is None, "the other Temporal did not start"
        time.sleep(0.1)
    yield f"127.0.0.1:{port}"
    server.terminate()
    server.wait(10)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def test_dev_comes_up_when_every_part_answers_works_on_changed_ports_and_stops_on_ctrl_c(
    tmp_path: Path, dev_runs: list[Dev]
) -> None:
    # Only the ports are set, not CALLREC_API_URL / CALLREC_RECORDER_URL: the callback URLs follow them.
    dev = Dev(tmp_path)
    dev_runs.append(dev)
    dev.wait_up()
    assert dev.health_when_up == 200, dev.output
    assert f"console        {dev.api_url}/console" in dev.output, dev.output  # where a person starts

    async with httpx.AsyncClient(base_url=dev.api_url, headers={"X-API-KEY": DEV_API_KEY}, timeout=30) as api:
        assert (await api.get("/console")).headers["Location"] == "/console/sign-in"
        room_id = await create_room(api)
        await join(api, room_id, "Alice")
        recording = await record(api, room_id, seconds=1.0)
    assert recording["status"] == "complete", recording

    # Each part's log lines start with its name, as key=value lines; the recording's name it.
    lines = dev.output.splitlines()
    recording_id = recording["recordingId"]
    [start] = [line for line in lines if line.startswith("api ") and "method=POST route=/api/v1/recordings " in line]
    assert "status=201 duration_ms=" in start and f"recording_id={recording_id} room_id={room_id}" in start, start
    assert any(line.startswith("worker ") and "worker polling task queue" in line for line in lines), dev.output
    assert any(line.startswith("recorder ") and f"recording_id={recording_id}" in line for line in lines), dev.output

    # `make dev` says where the metrics are; the worker's count the recording, the SDK's serve temporal_* series.
    token = (dev.data_dir / "metrics-token").read_text().strip()
    worker_metrics = f"http://127.0.0.1:{dev.ports['worker_metrics']}/metrics"
    sdk_metrics = f"http://127.0.0.1:{dev.ports['temporal_metrics']}/metrics"
    assert worker_metrics in dev.output and sdk_metrics in dev.output and f"Bearer {token}" in dev.output
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=10) as http:
        worker = (await http.get(worker_metrics)).text
        sdk = (await http.get(sdk_metrics)).text
        api = (await http.get(f"{dev.api_url}/metrics")).text
    assert 'callrec_recordings_ended_total{egress="builtin",error_code="",status="complete"} 1.0' in worker, worker
    assert "\ntemporal_" in sdk, sdk[:2000]
    assert 'route="/api/v1/recordings/<recording_id>/stop"' in api

    for name in ("token-secret", "recording-secret", "metrics-token"):  # generated, kept, owner-only
        secret = dev.data_dir / name
        assert len(secret.read_text().strip()) >= 32
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE((dev.data_dir / "temporal.db").stat().st_mode) == 0o600  # Temporal's state is private too

    # The operator CLI, from another directory and with no settings, finds this stack (the up message says how).
    assert "operator CLI" in dev.output and "ops list  (from any directory: it finds this stack)" in dev.output
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {name: value for name, value in dev.env.items() if not name.startswith("CALLREC_")}
    shown = subprocess.run(
        [str(Path(sys.executable).parent / "callrec"), "ops", "show", recording["recordingId"]],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "status: complete" in shown.stdout
    ui = f"http://127.0.0.1:{dev.ports['ui']}/namespaces/default/workflows/{recording['recordingId']}/"
    assert f"Temporal UI: {ui}" in shown.stdout, shown.stdout
    assert list(elsewhere.iterdir()) == []  # no stray .callrec/
    assert stat.S_IMODE((tmp_path / "state" / "callrec" / "dev-stack.json").stat().st_mode) == 0o600

    before_stop = len(dev.output)
    dev.process.send_signal(signal.SIGINT)
    assert dev.finish(timeout=5) == 0, dev.output  # every part stopped within 5 s of Ctrl-C
    assert "Traceback" not in dev.output and "KeyboardInterrupt" not in dev.output, dev.output
    # The recorder stops first, and its drain reaches the API (it had retried against an API already gone).
    stopping = dev.output[before_stop:]
    assert "drained: stopping" in stopping and " warning " not in stopping, stopping
    assert "callrec dev: stopped" in dev.output
    assert not [name for name, port in dev.ports.items() if _listening(port)], dev.output  # nothing left running


def test_dev_refuses_a_busy_port_naming_the_setting_and_starts_nothing(tmp_path: Path, dev_runs: list[Dev]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        dev = Dev(tmp_path, recorder_port=busy)
        dev_runs.append(dev)
        code = dev.finish()
    assert code != 0
    assert f"port {busy} is in use: set CALLREC_RECORDER_PORT" in dev.output, dev.output
    assert "Traceback" not in dev.output
    assert not _listening(dev.ports["temporal"]) and not _listening(dev.ports["api"])  # nothing was started
    assert not (dev.data_dir / "temporal.db").exists()


def test_dev_refuses_a_temporal_already_on_its_port_unless_the_address_is_set_to_it(
    tmp_path: Path, dev_runs: list[Dev], other_temporal: str
) -> None:
    refused = Dev(
        tmp_path / "refused",
        argv=[sys.executable, "-c", DEFAULT_ADDRESS_MOVED, other_temporal],
        temporal_address=None,  # not set: the default, which a Temporal already answers on
    )
    dev_runs.append(refused)
    assert refused.finish() != 0
    port = other_temporal.rsplit(":", 1)[1]
    assert f"a Temporal server already answers on port {port}" in refused.output, refused.output
    assert f"set CALLREC_TEMPORAL_ADDRESS={other_temporal} to use that one" in refused.output
    assert "Traceback" not in refused.output

    # Set on purpose: dev uses that Temporal and starts none of its own.
    chosen = Dev(tmp_path / "chosen", temporal_address=other_temporal)
    dev_runs.append(chosen)
    chosen.wait_up()
    assert chosen.health_when_up == 200, chosen.output
    assert "using the one at CALLREC_TEMPORAL_ADDRESS" in chosen.output
    assert not _listening(chosen.ports["ui"]) and not (chosen.data_dir / "temporal.db").exists()
    chosen.process.send_signal(signal.SIGINT)
    assert chosen.finish(timeout=5) == 0, chosen.output
    assert "Traceback" not in chosen.output
    assert _listening(int(port))  # the other Temporal still runs: dev did not stop it
