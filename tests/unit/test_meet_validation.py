"""Meet 3.8's request rules and messages: room id sanitiser, recording id format, maxItems, booleans, Range."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from callrec.api.errors import ApiError, validation_failed
from callrec.api.validation import (
    MaxItems,
    QueryBool,
    RoomId,
    TrueOrFalse,
    check_max_items,
    check_range_header,
    check_recording_id,
    check_recording_ids,
    check_room_id,
    sanitize_room_id,
)
from callrec.domain.ids import new_recording_id, new_room_id


def details(exc: pytest.ExceptionInfo[ApiError]) -> list[dict[str, str]]:
    assert exc.value.status == 422
    assert exc.value.body()["error"] == "Unprocessable Entity"
    assert exc.value.body()["message"] == "Invalid request"
    return exc.value.details or []


def test_room_ids_are_sanitised_and_limited_as_in_meet() -> None:
    assert sanitize_room_id("  weekly sync!#-a1_b2 ") == "weeklysync-a1_b2"
    assert check_room_id(" room-1 ") == "room-1"
    assert check_room_id("x" * 100) == "x" * 100
    for value, message in [
        ("", "roomId is required and cannot be empty"),
        ("x" * 101, "roomId cannot exceed 100 characters"),
        ("!!! ..", "roomId cannot be empty after sanitization"),
    ]:
        with pytest.raises(ApiError) as exc:
            check_room_id(value)
        assert details(exc) == [{"field": "roomId", "message": message}]


def test_created_ids_pass_meets_rules_unchanged() -> None:
    for name in ("Weekly sync", "ÄÖÜ ---", "x" * 300, ""):
        room_id = new_room_id(name)
        assert check_room_id(room_id) == room_id
        recording_id = new_recording_id(room_id)
        assert check_recording_id(recording_id) == recording_id


def test_recording_ids_follow_meets_format() -> None:
    assert check_recording_id("  room-1--EG_abc--x1  ") == "room-1--EG_abc--x1"
    assert check_recording_id("room 1!--EG_abc--x1") == "room1--EG_abc--x1"  # the room part is sanitised
    for bad in ("invalid-recording-id", "room--EG_--x", "room--EGabc--x", "--EG_a--x", "room--EG_a--", "a--EG_b--c--d"):
        with pytest.raises(ApiError) as exc:
            check_recording_id(bad, "params.recordingId")
        assert details(exc) == [
            {"field": "params.recordingId", "message": "recordingId does not follow the expected format"}
        ]
    with pytest.raises(ApiError) as exc:
        check_recording_id("", "recordingId")
    assert details(exc) == [{"field": "recordingId", "message": "recordingId is required and cannot be empty"}]
    with pytest.raises(ApiError) as exc:
        check_recording_id("   ", "recordingId")  # both of Meet's refinements report
    assert details(exc) == [
        {"field": "recordingId", "message": "recordingId cannot be empty after sanitization"},
        {"field": "recordingId", "message": "recordingId does not follow the expected format"},
    ]


def test_recording_id_lists_as_in_meet() -> None:
    assert check_recording_ids(["a--EG_1--x, a--EG_1--x", "b--EG_2--y"]) == ["a--EG_1--x", "b--EG_2--y"]
    for values in ([], [""], [" , ,"]):
        with pytest.raises(ApiError) as exc:
            check_recording_ids(values)
        assert details(exc) == [{"field": "recordingIds", "message": "At least one recordingId is required"}]
    with pytest.raises(ApiError) as exc:
        check_recording_ids(["valid--EG_111--5678,invalid--recording.id"])
    assert details(exc) == [{"field": "recordingIds.1", "message": "recordingId does not follow the expected format"}]


def test_max_items_as_in_meet() -> None:
    assert check_max_items(None) == 10
    assert check_max_items("7") == 7
    assert check_max_items("500") == 100  # above 100 counts as 100
    assert check_max_items("1e2") == 100
    assert check_max_items("3.0") == 3
    for raw, message in [
        ("abc", "Expected number, received nan"),
        ("0", "maxItems must be a positive number"),
        ("-4", "maxItems must be a positive number"),
        ("", "maxItems must be a positive number"),  # Number("") is 0
        ("3.5", "Expected integer, received float"),  # callrec: Meet floors it
    ]:
        with pytest.raises(ApiError) as exc:
            check_max_items(raw)
        assert details(exc) == [{"field": "maxItems", "message": message}], raw


def test_range_header_as_in_meet() -> None:
    for good in (None, "bytes=0-99", "bytes=100-", " bytes=5-1 ", "bytes=99999999999999999999999-1"):
        check_range_header(good)
    for bad in ("bytes=-500", "bytes=0-1,5-9", "bytes=100", "invalid-range", "bytes=a-b", "items=0-1", "bytes=٣-"):
        with pytest.raises(ApiError) as exc:
            check_range_header(bad)
        assert details(exc) == [
            {"field": "headers.range", "message": "Invalid range header format. Expected: bytes=start-end"}
        ], bad


class Query(BaseModel):
    model_config = ConfigDict(extra="forbid")
    roomId: RoomId | None = None
    maxItems: MaxItems = 10
    flag: QueryBool = False
    privateAccess: TrueOrFalse = False
    sortOrder: Literal["asc", "desc"] = "desc"


def failed(data: dict[str, object]) -> list[dict[str, str]]:
    with pytest.raises(ValidationError) as exc:
        Query.model_validate(data)
    body = validation_failed(exc.value).body()
    assert body["error"] == "Unprocessable Entity" and body["message"] == "Invalid request"
    details: list[dict[str, str]] = body["details"]
    return details


def test_models_answer_meets_wording() -> None:
    ok = Query.model_validate({"roomId": " r 1 ", "maxItems": "250", "flag": "TRUE", "privateAccess": "yes"})
    assert (ok.roomId, ok.maxItems, ok.flag, ok.privateAccess) == ("r1", 100, True, False)
    assert Query.model_validate({"privateAccess": "True"}).privateAccess is True
    assert failed({"roomId": "*"}) == [{"field": "roomId", "message": "roomId cannot be empty after sanitization"}]
    assert failed({"roomId": 5}) == [{"field": "roomId", "message": "Expected string, received number"}]
    assert failed({"maxItems": "abc"}) == [{"field": "maxItems", "message": "Expected number, received nan"}]
    assert failed({"flag": "yes"}) == [{"field": "flag", "message": "Expected boolean, received string"}]
    assert failed({"sortOrder": "up"}) == [
        {"field": "sortOrder", "message": "Invalid enum value. Expected 'asc' | 'desc', received 'up'"}
    ]
    assert failed({"other": 1}) == [{"field": "body", "message": "Unrecognized key(s) in object: 'other'"}]
