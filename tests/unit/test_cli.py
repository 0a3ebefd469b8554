"""`callrec --version`, the settings each command's `--help` lists, and one-line messages instead of tracebacks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from bench.common import free_port
from callrec.cli import main
from callrec.domain.settings import Settings


def _help(command: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    return capsys.readouterr().out


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"callrec {version('callrec')}"


def test_help_lists_the_settings_a_command_reads_with_descriptions_and_defaults(
    capsys: pytest.CaptureFixture[str],
) -> None:
    api = _help("api", capsys)
    assert "CALLREC_API_PORT  (default 8080)" in api
    assert str(Settings.model_fields["api_port"].description) in api
    assert "CALLREC_TEMPORAL_ADDRESS  (default 127.0.0.1:7233)" in api
    assert "CALLREC_RECORDER_PORT" not in api  # the recorder's, not the API's

    migrate = _help("migrate", capsys)
    assert "CALLREC_DATABASE_URL" in migrate and "CALLREC_DATA_DIR" in migrate
    assert "CALLREC_API_KEY" not in migrate and "CALLREC_TEMPORAL_ADDRESS" not in migrate

    recorder = _help("recorder", capsys)
    assert "CALLREC_RECORDER_PORT  (default 8090)" in recorder and "CALLREC_RECORDING_SECRET  (secret)" in recorder

    dev = _help("dev", capsys)  # dev runs every part: every setting
    assert all(f"CALLREC_{name.upper()}  (" in dev for name in Settings.model_fields)


def test_every_setting_has_a_description_for_the_help() -> None:
    assert [name for name, field in Settings.model_fields.items() if not field.description] == []


def test_help_never_prints_a_secret_value(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "s3cr3t-" + "x" * 40
    for name in ("API_KEY", "TOKEN_SECRET", "RECORDING_SECRET", "S3_SECRET_KEY"):
        monkeypatch.setenv(f"CALLREC_{name}", secret)
    for command in ("dev", "api", "worker", "recorder", "ops"):
        assert secret not in _help(command, capsys)


def _callrec(*argv: str, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("CALLREC_")}
    env |= {f"CALLREC_{name.upper()}": value for name, value in settings.items()}
    return subprocess.run(
        [sys.executable, "-m", "callrec.cli", *argv], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("command", ["api", "worker"])
def test_an_unreachable_temporal_is_one_line_naming_its_address_and_setting(command: str, tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    done = _callrec(
        command,
        temporal_address=address,
        data_dir=str(tmp_path),
        api_key="k" * 40,
        token_secret="t" * 40,
        recording_secret="r" * 40,
        api_port=str(free_port()),
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr, done.stderr
    assert f"callrec {command}: Temporal at {address} does not answer" in done.stderr
    assert "CALLREC_TEMPORAL_ADDRESS" in done.stderr


@pytest.mark.parametrize(("command", "setting"), [("api", "api_port"), ("recorder", "recorder_port")])
def test_a_port_in_use_is_one_line_naming_its_setting(command: str, setting: str, tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        secrets = {"api_key": "k" * 40, "token_secret": "t" * 40, "recording_secret": "r" * 40}
        done = _callrec(command, data_dir=str(tmp_path), **secrets, **{setting: str(port)})
    assert done.returncode == 1
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr == f"callrec {command}: cannot listen on 127.0.0.1:{port} (Address already in use): set " \
        f"CALLREC_{setting.upper()}\n"  # fmt: skip


def test_a_setting_that_does_not_parse_is_named(tmp_path: Path) -> None:
    done = _callrec("api", api_port="eighty", data_dir=str(tmp_path))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("callrec api: CALLREC_API_PORT: Input should be a valid integer")


def test_callback_urls_follow_the_ports_unless_set() -> None:
    moved = Settings(api_port=9000, recorder_host="0.0.0.0", recorder_port=9001)
    # a recorder that listens everywhere registers its host name: the API may run on another machine
    assert (moved.api_url, moved.recorder_url) == ("http://127.0.0.1:9000", f"http://{socket.gethostname()}:9001")
    assert Settings(recorder_host="127.0.0.1", recorder_port=9001).recorder_url == "http://127.0.0.1:9001"
    assert Settings(api_port=9000, api_url="https://rec.example.com").api_url == "https://rec.example.com"
