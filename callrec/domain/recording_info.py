"""A recording as OpenVidu Meet's `MeetRecordingInfo` shows it: the REST API's view and the webhooks' `data`.

Meet's typings make every field but `recordingId`, `roomId`, `roomName` and `status` optional: a field with no value
yet (no `endDate` before the stop, no `size` before the file is stored, no `error` unless it failed) is left out,
never sent as `null`. callrec adds `gaps` (its own) only when a recorder was lost mid-recording.
"""

from __future__ import annotations

from typing import Any

from callrec.domain.recording import Recording

# MeetRecordingInfo's fields, in its order; the first four are always present.
MEET_RECORDING_FIELDS = (
    "recordingId",
    "roomId",
    "roomName",
    "status",
    "layout",
    "encoding",
    "filename",
    "startDate",
    "endDate",
    "duration",
    "size",
    "errorCode",
    "error",
    "details",
)
# Every name a recording object may have (what `fields` / `X-Fields` may select): Meet's and callrec's `gaps`.
RECORDING_FIELDS = (*MEET_RECORDING_FIELDS, "gaps")
# What a recording that has just started (`active`) does not have yet, as Meet answers a start.
NOT_YET_AT_START = frozenset({"duration", "endDate", "size"})


def recording_info(rec: Recording) -> dict[str, Any]:
    """`rec` in Meet's shape: fields without a value left out."""
    values: dict[str, Any] = {
        "recordingId": rec.recording_id,
        "roomId": rec.room_id,
        "roomName": rec.room_name,
        "status": rec.status.value,
        "layout": rec.layout,
        "encoding": rec.encoding,
        "filename": rec.filename,
        "startDate": rec.start_date,
        "endDate": rec.end_date,
        "duration": rec.duration,
        "size": rec.size,
        "errorCode": rec.error_code,
        "error": rec.error,
        "details": rec.details,
    }
    info = {name: value for name, value in values.items() if value is not None}
    if rec.gaps:  # callrec's own: where a recorder was lost and another one went on
        info["gaps"] = [{"offset": g.offset_s, "duration": g.duration_s} for g in rec.gaps]
    return info


def started_info(rec: Recording) -> dict[str, Any]:
    """A start's answer: the recording as it just became `active` (no duration, end or size yet, as in Meet)."""
    return {name: value for name, value in recording_info(rec).items() if name not in NOT_YET_AT_START}


def stopped_info(rec: Recording) -> dict[str, Any]:
    """A stop's answer (`ending`): with the duration recorded so far, from its start to the stop.

    The stored file's own duration (what a built-in recorder reported so far) lags a segment behind; the stop
    answers the wall-clock time recorded, as Meet does. A recording without a start date answers 0.
    """
    info = recording_info(rec)
    if rec.start_date is not None and rec.end_date is not None:
        info["duration"] = max(0.0, (rec.end_date - rec.start_date) / 1000)
    else:
        info.setdefault("duration", 0.0)
    return _in_meet_order(info)


def _in_meet_order(info: dict[str, Any]) -> dict[str, Any]:
    order = {name: i for i, name in enumerate(MEET_RECORDING_FIELDS)}
    return dict(sorted(info.items(), key=lambda item: order.get(item[0], len(order))))
