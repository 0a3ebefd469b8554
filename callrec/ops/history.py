"""A workflow's history events, summarized for people: what `show` lists and what `retry` chooses from."""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

from callrec.ops.output import iso_dt

# Workflow-task bookkeeping says nothing an operator acts on.
_QUIET_EVENTS = {
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
}


def _event_name(event_type: int) -> str:
    name = EventType.Name(event_type).removeprefix("EVENT_TYPE_")  # type: ignore[arg-type]
    return "".join(part.capitalize() for part in name.split("_"))


def _failure_message(attributes: Any) -> str | None:
    for field in ("failure", "last_failure"):
        if field in attributes.DESCRIPTOR.fields_by_name and attributes.HasField(field):
            failure = getattr(attributes, field)
            message: str = failure.message
            cause: str = failure.cause.message if failure.HasField("cause") else ""
            return message + (f" ({cause})" if cause and cause != message else "")
    return None


def _marker(attributes: Any) -> dict[str, Any]:
    """A local activity (the catalog writes run as local activities) or a patch, by name."""
    details = attributes.details
    try:
        if attributes.marker_name == "core_local_activity" and "data" in details:
            data = json.loads(details["data"].payloads[0].data)
            return {"activity": data["activity_type"], "local": True, "attempt": data["attempt"]}
        if attributes.marker_name == "core_patch" and "patch-data" in details:
            return {"patch": json.loads(details["patch-data"].payloads[0].data)["id"]}
    except (IndexError, KeyError, ValueError):  # a marker of another shape: shown by its type alone
        pass
    return {}


def summarize_event(event: HistoryEvent, activities: dict[int, str]) -> dict[str, Any] | None:
    """One line of history for people: type, time, and the activity, signal, update or failure it is about."""
    if event.event_type in _QUIET_EVENTS:
        return None
    which = event.WhichOneof("attributes")
    attributes: Any = getattr(event, which) if which else None
    item: dict[str, Any] = {
        "eventId": event.event_id,
        "time": iso_dt(event.event_time.ToDatetime(UTC)),
        "type": _event_name(event.event_type),
    }
    if attributes is None:
        return item
    if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        activities[event.event_id] = attributes.activity_type.name
        item["activity"] = attributes.activity_type.name
    elif "scheduled_event_id" in attributes.DESCRIPTOR.fields_by_name and event.event_type != (
        EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
    ):
        if (name := activities.get(attributes.scheduled_event_id)) is not None:
            item["activity"] = name
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            item["attempt"] = attributes.attempt
    if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
        item |= _marker(attributes)
    elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
        item["signal"] = attributes.signal_name
    elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
        item["update"] = attributes.accepted_request.input.name
    elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
        item["reason"] = attributes.reason
    elif event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
        item["timer"] = f"{attributes.start_to_fire_timeout.ToTimedelta().total_seconds():g} s"
    elif event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
        fields = attributes.search_attributes.indexed_fields
        item["searchAttributes"] = {name: payload_text(fields[name].data) for name in fields}
    if (failure := _failure_message(attributes)) is not None:
        item["failure"] = failure
    return item


def payload_text(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data.decode("utf-8", "replace")
