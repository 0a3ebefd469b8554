"""One log format for every process: structlog over the standard `logging` module.

`configure` gives the root logger one handler, so whatever logs through `logging` (callrec's own
`logging.getLogger(__name__)`, Temporal's `workflow.logger` and `activity.logger`, hypercorn, alembic) comes out
in the same format as structlog's loggers: a JSON object per line (`CALLREC_LOG_FORMAT=json`), or a readable
`key=value` line that starts with the process name (`text`, what `callrec dev` shows).

A line about a recording carries `recording_id`, `room_id` and `workflow_id`. Who knows one of them binds it
(`bind_recording`, structlog's context variables: the request, the recorder's session); the rest follows from it
(`_recording_ids`): a recording's workflow id is its recording id, and the recording id starts with its room id.
A line logged inside an activity or by `workflow.logger` gets its workflow id from Temporal.

An ApplicationError is raised on purpose, and its type and message say what happened: a line that logs one (the
SDK's "Completing activity as failed") names them instead of a traceback. Tracebacks are for bugs.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from typing import IO, Literal

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger
from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError

from callrec.domain.recording import RECORDING_ID

LogFormat = Literal["text", "json"]
LogLevel = Literal["debug", "info", "warning", "error"]
IDS = ("recording_id", "room_id", "workflow_id")
# Every line's first fields, in this order (the text format writes the first four without their names).
_HEAD = ("process", "timestamp", "level", "message", "logger", *IDS)


def bind_recording(recording_id: str | None = None, room_id: str | None = None) -> None:
    """From now on in this task (and the tasks it starts), lines carry this recording's ids."""
    ids = {"recording_id": recording_id, "room_id": room_id}
    structlog.contextvars.bind_contextvars(**{key: value for key, value in ids.items() if value})


def _recording_ids(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """Fills in the ids a line's other ids imply, and those Temporal knows for a workflow's or activity's line."""
    record = event.get("_record")
    temporal = getattr(record, "temporal_workflow", None) or getattr(record, "temporal_activity", None)
    if temporal is None and activity.in_activity():  # a plain logger's line, inside an activity
        temporal = {"workflow_id": activity.info().workflow_id, "activity_type": activity.info().activity_type}
    if temporal:
        event.setdefault("workflow_id", temporal.get("workflow_id"))
        if temporal.get("activity_type"):
            event.setdefault("activity", temporal["activity_type"])
    for key in ("workflow_id", "recording_id"):
        match = RECORDING_ID.match(str(event.get(key) or ""))
        if match:  # a recording's workflow id is its recording id; the recording id starts with its room's
            event.setdefault("recording_id", match[0])
            event.setdefault("workflow_id", match[0])
            event.setdefault("room_id", match["room"])
    return event


def _expected_failures(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """An ApplicationError's type and message instead of its traceback."""
    exc_info = event.get("exc_info")
    if exc_info is True:
        exc_info = sys.exc_info()
    error = exc_info[1] if isinstance(exc_info, tuple) else exc_info
    if isinstance(error, ApplicationError):
        event.pop("exc_info")
        event["error_type"] = error.type
        event["error"] = error.message
    return event


def _ordered(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """The head fields first, then the rest as they came; no empty ones."""
    head = {key: event.pop(key) for key in _HEAD if key in event}
    return head | {key: value for key, value in event.items() if value is not None}


def _value(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if not text or any(c in text for c in ' ="\\') or not text.isprintable():
        return json.dumps(text)
    return text


def render_text(_: WrappedLogger, __: str, event: EventDict) -> str:
    """`process timestamp level message key=value ...`, then the traceback (if any) on the lines below."""
    exception = event.pop("exception", None)
    process, timestamp, level, message = (str(event.pop(key, "")) for key in _HEAD[:4])
    fields = " ".join(f"{key}={_value(value)}" for key, value in event.items())
    message = message.replace("\n", "\\n")  # one line per line
    line = f"{process:<8} {timestamp} {level:<7} {message}{'  ' + fields if fields else ''}"
    return f"{line}\n{exception.rstrip()}" if exception else line


def _processors(process: str) -> list[Processor]:
    """What every line goes through, from structlog's loggers and from `logging`'s alike."""

    def add_process(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
        event.setdefault("process", process)
        return event

    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_process,
        _recording_ids,
        _expected_failures,
    ]


def configure(process: str, fmt: LogFormat = "text", level: LogLevel = "info", stream: IO[str] | None = None) -> None:
    """Every log line of this process in `fmt`, from `level` up, to `stream` (standard error)."""
    shared = _processors(process)
    renderer: Callable[..., str] = (
        structlog.processors.JSONRenderer(default=str) if fmt == "json" else render_text  # type: ignore[assignment]
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("message"),
            _ordered,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    # Temporal's loggers: the workflow's and activity's details as fields (above), not appended to the message.
    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False
    # A line per outgoing request (with its URL's query string) only when debugging.
    logging.getLogger("httpx").setLevel(logging.DEBUG if level == "debug" else logging.WARNING)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger: `log.info("what happened", key=value, ...)`."""
    return structlog.stdlib.get_logger(name)
