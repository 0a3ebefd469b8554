"""The two log formats, CALLREC_LOG_LEVEL, and the Temporal dev server's lines relayed by `callrec dev`."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from temporalio.exceptions import ApplicationError

from callrec import logs
from callrec.dev import relay_temporal
from callrec.domain.settings import Settings

RECORDING = "weekly-sync-ab12cd34--EG_x1y2z3--Q9"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield io.StringIO()
    root.handlers, root.level = handlers, level
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def test_text_lines_start_with_the_process_and_carry_the_recordings_ids_as_key_values(stream: io.StringIO) -> None:
    logs.configure("worker", "text", "info", stream)
    logs.bind_recording(RECORDING)
    logging.getLogger("callrec.x").warning("upload of %s answered %s", "it", 503)
    logs.get_logger("callrec.access").info("request", method="POST", route="/api/v1/recordings", status=201)

    first, second = stream.getvalue().splitlines()
    assert first.startswith("worker ") and " warning upload of it answered 503  logger=callrec.x " in first
    assert f"recording_id={RECORDING} room_id=weekly-sync-ab12cd34 workflow_id={RECORDING}" in first
    assert second.startswith("worker ") and " info    request  " in second
    assert "method=POST route=/api/v1/recordings status=201" in second
    assert "\x1b" not in stream.getvalue()  # no colour codes


def test_an_application_error_is_its_type_and_message_a_bug_keeps_its_traceback(stream: io.StringIO) -> None:
    logs.configure("worker", "json", "info", stream)
    log = logging.getLogger("temporalio.activity")
    try:
        raise ApplicationError("recording server does not know this recording", type="EgressNotFound")
    except ApplicationError:
        log.warning("Completing activity as failed", exc_info=True)
    try:
        {}["missing"]
    except KeyError:
        log.warning("Completing activity as failed", exc_info=True)

    expected, bug = (json.loads(line) for line in stream.getvalue().splitlines())
    assert "exception" not in expected
    assert (expected["error_type"], expected["error"]) == (
        "EgressNotFound",
        "recording server does not know this recording",
    )
    assert bug["exception"].startswith("Traceback") and "KeyError" in bug["exception"]


def test_the_log_level_setting_is_honoured_and_read_in_any_case(stream: io.StringIO) -> None:
    assert Settings(log_level="WARNING", log_format="JSON").log_level == "warning"  # type: ignore[arg-type]
    logs.configure("api", "text", "warning", stream)
    logging.getLogger("callrec.x").info("not written")
    logging.getLogger("callrec.x").warning("written")
    assert [line.split()[3] for line in stream.getvalue().splitlines()] == ["written"]


def test_the_temporal_dev_servers_lines_come_out_as_the_process_temporal(stream: io.StringIO) -> None:
    logs.configure("dev", "json", "info", stream)
    relay_temporal(io.BytesIO(b'time=2026-01-01T00:00:00.000 level=WARN msg="Cluster Id is not a uuid" component=x\n'))
    [line] = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert (line["process"], line["level"]) == ("temporal", "warning")
    assert line["message"] == 'msg="Cluster Id is not a uuid" component=x'


@pytest.mark.parametrize("level", ["info", "warning"])
def test_a_command_logs_json_lines_at_the_configured_level(tmp_path: Path, level: str) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("CALLREC_")}
    env |= {"CALLREC_DATA_DIR": str(tmp_path), "CALLREC_LOG_FORMAT": "json", "CALLREC_LOG_LEVEL": level}
    done = subprocess.run(
        [sys.executable, "-m", "callrec.cli", "migrate"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    if level == "warning":
        assert lines == []
    else:
        assert lines and all(line["process"] == "migrate" for line in lines)
        assert any(
            line["logger"] == "alembic.runtime.migration" and "Running upgrade" in line["message"] for line in lines
        )
