"""What `callrec ops` prints: the text renderings, and the views of recordings and workflows that `--json` prints."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from pydantic.alias_generators import to_camel
from temporalio.client import WorkflowExecutionDescription

from callrec.domain.recording import ROOM_ID_ATTR, STATUS_ATTR, Recording
from callrec.domain.settings import Settings
from callrec.storage.rows import RecordingRow

# What ops shows of a recording, in this order (camelCase, like the REST API).
_RECORDING_FIELDS = (
    "recording_id",
    "room_id",
    "room_name",
    "status",
    "error",
    "error_code",
    "details",
    "creation_date",
    "start_date",
    "end_date",
    "duration",
    "size",
    "object_key",
    "owner",
)


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def iso_dt(moment: datetime | None) -> str | None:
    return None if moment is None else iso(int(moment.timestamp() * 1000))


def recording_view(row: RecordingRow) -> dict[str, Any]:
    """A catalog row as every ops command shows it: the domain `Recording`, and the row's projection number."""
    recording = Recording.model_validate(row).model_dump(mode="json")
    return {to_camel(name): recording[name] for name in _RECORDING_FIELDS} | {"seq": row.seq}


def workflow_view(description: WorkflowExecutionDescription) -> dict[str, Any]:
    attributes = description.typed_search_attributes
    return {
        "status": description.status.name if description.status is not None else None,
        "workflowType": description.workflow_type,
        "runId": description.run_id,
        "taskQueue": description.task_queue,
        "startTime": iso_dt(description.start_time),
        "closeTime": iso_dt(description.close_time),
        "historyLength": description.history_length,
        "roomId": attributes.get(ROOM_ID_ATTR),
        "recordingStatus": attributes.get(STATUS_ATTR),
    }


def error_view(recording: dict[str, Any] | None, current: dict[str, Any] | None) -> dict[str, Any] | None:
    """Why the recording failed or was aborted (catalog row first, else the running workflow's state), or None."""
    for source, code in ((recording, "errorCode"), (current, "error_code")):
        if source is not None and source.get("error"):
            return {"error": source["error"], "errorCode": source.get(code), "details": source.get("details")}
    return None


def workflow_url(settings: Settings, workflow_id: str, run_id: str | None) -> str:
    """The workflow's page in the Temporal web UI (CALLREC_TEMPORAL_UI_URL; the same path on Temporal Cloud)."""
    path = f"namespaces/{quote(settings.temporal_namespace, safe='')}/workflows/{quote(workflow_id, safe='')}"
    return f"{settings.temporal_ui_url.rstrip('/')}/{path}" + (f"/{quote(run_id, safe='')}/history" if run_id else "")


# ------------------------------------------------------------------ text


def format_list(recordings: list[dict[str, Any]]) -> str:
    if not recordings:
        return "no recordings"
    header = ("RECORDING", "ROOM", "STATUS", "ERROR", "STARTED")
    rows = [
        (r["recordingId"], r["roomId"], r["status"], r["error"] or "-", iso(r["startDate"]) or "-") for r in recordings
    ]
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join([*(cell.ljust(width) for cell, width in zip(line[:-1], widths, strict=True)), line[-1]])
        for line in [header, *rows]
    )


_DATES = {"creationDate", "startDate", "endDate", "start_date", "end_date"}


def _fields(values: dict[str, Any], indent: str = "  ") -> list[str]:
    lines = []
    for key, value in values.items():
        if isinstance(value, dict):
            lines += [f"{indent}{key}:", *_fields(value, indent + "  ")]
        elif value is not None:
            lines.append(f"{indent}{key}: {iso(value) if key in _DATES else value}")
    return lines


def format_show(shown: dict[str, Any]) -> str:
    lines = [f"recording {shown['recordingId']}"]
    if (error := shown.get("error")) is not None:
        code = f" ({error['errorCode']})" if error["errorCode"] is not None else ""
        lines.append(f"error: {error['error']}{code}" + (f": {error['details']}" if error["details"] else ""))
    if shown.get("workflowUrl"):
        lines.append(f"Temporal UI: {shown['workflowUrl']}")
    lines += ["catalog:", *(_fields(shown["recording"]) if shown["recording"] else ["  (no row)"])]
    lines += ["workflow:", *(_fields(shown["workflow"]) if shown["workflow"] else ["  (no workflow)"])]
    if shown["current"] is not None:
        lines += ["current state (query):", *_fields(shown["current"])]
    elif "currentError" in shown:
        lines.append(f"current state: {shown['currentError']}")
    if shown["history"]:
        total, count = shown.get("historyEvents", len(shown["history"])), len(shown["history"])
        # `total` leaves the workflow-task bookkeeping out, which the workflow's historyLength counts
        shown_as = f"the last {count} of {total} events" if count != total else f"{total} events"
        more = "; --events 0: all" if count != total else ""
        lines.append(f"history ({shown_as} without workflow-task bookkeeping{more}):")
        lines += [f"  {event_line(item)}" for item in shown["history"]]
    return "\n".join(lines)


def event_line(item: dict[str, Any]) -> str:
    extra = ", ".join(f"{k}={v}" for k, v in item.items() if k not in ("eventId", "time", "type"))
    return f"{item['eventId']:>4} {item['time']} {item['type']}" + (f" {extra}" if extra else "")


def format_abort(result: dict[str, Any]) -> str:
    lines = [f"recording {result['recordingId']}:", *(f"  {action}" for action in result["actions"])]
    row = result["recording"]
    if row is not None:
        lines.append(f"  catalog: {row['status']}" + (f" ({row['error']})" if row["error"] else ""))
    lines.append(f"  workflow: {result['workflowStatus'] or 'none'}")
    return "\n".join(lines)


def format_retry(result: dict[str, Any]) -> str:
    previous, point = result["previousRun"], result["resetPoint"]
    ended = previous["workflow"] + (f", recording {previous['status']}" if previous["status"] else "")
    ended += f" ({previous['error']})" if previous["error"] else ""
    lines = [
        f"recording {result['recordingId']}:",
        f"  previous run {previous['runId']}: {ended}",
        f"  reset to event {point['eventId']} (WorkflowTaskCompleted; the recording was {point['recordingStatus']} "
        f"there): {point['step']}",
    ]
    if point["before"] is not None:
        lines.append(f"    the event before it: {event_line(point['before']).strip()}")
    if point["reapplied"] == "none":
        lines.append("    signals and updates that came after it are not applied again")
    lines.append(f"  new run {result['runId']}")
    lines += [f"  {action}" for action in result["actions"]]
    row = result["recording"]
    if row is not None:
        lines.append(f"  catalog: {row['status']}" + (f" ({row['error']})" if row["error"] else ""))
    lines.append(f"  workflow: {result['workflowStatus'] or 'none'}")
    return "\n".join(lines)
