"""Request rules as OpenVidu Meet 3.8 applies them, with its messages (its zod schemas, in our code).

- Room ids: at most 100 characters as sent, then every character but letters, digits, `_` and `-` removed
  (which also trims them); empty before or after that is refused.
- Recording ids: trimmed; `{roomId}--EG_{egress}--{uid}` with the room part sanitised like a room id; three
  non-empty parts split on `--`, the middle one `EG_` and more.
- `maxItems`: a positive number, above 100 counts as 100.
- Booleans in query strings: `true` / `false` in any case.
- `Range`: `bytes=start-` or `bytes=start-end` (one range, digits only).

Each rule answers Meet's 422 body: `{error: "Unprocessable Entity", message: "Invalid request",
details: [{field, message}]}`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo
from pydantic_core import PydanticCustomError

from callrec.api.errors import ApiError

ROOM_ID_MAX_LENGTH = 100
MAX_ITEMS_CAP = 100
RANGE_FORMAT = re.compile(r"bytes=[0-9]+-[0-9]*", re.ASCII)
RANGE_MESSAGE = "Invalid range header format. Expected: bytes=start-end"
_NOT_ID_CHARACTER = re.compile(r"[^a-zA-Z0-9_-]")
# A number as JavaScript's `Number()` reads a query value (what zod's `coerce.number()` does), decimal only.
_JS_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?Infinity", re.ASCII)

Details = list[dict[str, str]]


def unprocessable(details: Details) -> ApiError:
    return ApiError(422, "Unprocessable Entity", "Invalid request", details)


# ------------------------------------------------------------------------- room ids


def sanitize_room_id(value: str) -> str:
    """Letters, digits, `_` and `-` kept, everything else (spaces included) removed."""
    return _NOT_ID_CHARACTER.sub("", value)


def room_id_problem(value: str, field: str = "roomId") -> tuple[str, str | None]:
    """(the sanitised id, None) or (the value, Meet's message)."""
    if len(value) < 1:
        return value, f"{field} is required and cannot be empty"
    if len(value) > ROOM_ID_MAX_LENGTH:
        return value, f"{field} cannot exceed {ROOM_ID_MAX_LENGTH} characters"
    sanitized = sanitize_room_id(value)
    if not sanitized:
        return value, f"{field} cannot be empty after sanitization"
    return sanitized, None


def check_room_id(value: str, field: str = "roomId") -> str:
    """The sanitised room id; 422 with Meet's message when there is none."""
    sanitized, problem = room_id_problem(value, field)
    if problem is not None:
        raise unprocessable([{"field": field, "message": problem}])
    return sanitized


def _room_id_rule(value: str, info: ValidationInfo) -> str:
    field = info.field_name or "roomId"
    sanitized, problem = room_id_problem(value, field)
    if problem is not None:
        raise PydanticCustomError("meet_room_id", problem)
    return sanitized


# A room id in a body or query string: sanitised as Meet sanitises it.
RoomId = Annotated[
    str,
    AfterValidator(_room_id_rule),
    Field(json_schema_extra={"maxLength": ROOM_ID_MAX_LENGTH, "minLength": 1}),
]


# ------------------------------------------------------------------------- recording ids


def recording_id_problems(value: str, field: str = "recordingId") -> tuple[str, list[str]]:
    """(the sanitised id, []) or (the value, Meet's messages: both of its refinements report)."""
    if len(value) < 1:
        return value, [f"{field} is required and cannot be empty"]
    sanitized = value.strip()
    parts = sanitized.split("--")
    if len(parts) == 3:
        room, problem = room_id_problem(parts[0])
        if problem is None:
            sanitized = f"{room}--{parts[1]}--{parts[2]}"
            parts = sanitized.split("--")
    problems = []
    if sanitized == "":
        problems.append(f"{field} cannot be empty after sanitization")
    well_formed = (
        len(parts) == 3 and parts[0] != "" and parts[1].startswith("EG_") and len(parts[1]) > 3 and parts[2] != ""
    )
    if not well_formed:
        problems.append(f"{field} does not follow the expected format")
    return (value, problems) if problems else (sanitized, [])


def check_recording_id(value: str, field: str = "recordingId") -> str:
    """The sanitised recording id; 422 with Meet's messages, reported on `field`, when malformed."""
    sanitized, problems = recording_id_problems(value)
    if problems:
        raise unprocessable([{"field": field, "message": problem} for problem in problems])
    return sanitized


def check_recording_ids(values: Iterable[str], field: str = "recordingIds") -> list[str]:
    """`recordingIds` as Meet reads it: comma-separated, blanks dropped, at least one, each a well-formed id
    (reported as `recordingIds.<index>`). The sanitised ids, repeats dropped, in order."""
    ids = [part.strip() for value in values for part in value.split(",")]
    ids = [i for i in ids if i]
    if not ids:
        raise unprocessable([{"field": field, "message": "At least one recordingId is required"}])
    details: Details = []
    sanitized_ids = []
    for index, value in enumerate(ids):
        sanitized, problems = recording_id_problems(value)
        details.extend({"field": f"{field}.{index}", "message": problem} for problem in problems)
        sanitized_ids.append(sanitized)
    if details:
        raise unprocessable(details)
    return list(dict.fromkeys(sanitized_ids))


# ------------------------------------------------------------------------- query values


def max_items(value: Any, field: str = "maxItems") -> Any:
    """`maxItems` as Meet reads it: a positive number, at most 100. Unlike Meet (which floors `3.5` to 3),
    a fraction is refused: the parameter is an integer in Meet's OpenAPI document."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text == "":
        number = 0.0  # `Number("")` is 0
    elif _JS_NUMBER.fullmatch(text) is None:
        raise PydanticCustomError("meet_number", "Expected number, received nan")
    else:
        number = float(text.replace("Infinity", "inf"))
    if not number > 0:
        raise PydanticCustomError("meet_positive", f"{field} must be a positive number")
    if math.isinf(number):
        return MAX_ITEMS_CAP
    if not number.is_integer():
        raise PydanticCustomError("meet_integer", "Expected integer, received float")
    return min(int(number), MAX_ITEMS_CAP)


def _max_items_rule(value: Any, info: ValidationInfo) -> Any:
    return max_items(value, info.field_name or "maxItems")


# A page size: positive, above 100 counts as 100.
MaxItems = Annotated[
    int,
    BeforeValidator(_max_items_rule),
    Field(json_schema_extra={"minimum": 1, "maximum": MAX_ITEMS_CAP}),
]


def query_bool(value: Any) -> Any:
    """`true` / `false` in any case; anything else is left to fail as a boolean (zod's "Expected boolean")."""
    if isinstance(value, str):
        lowered = value.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        raise PydanticCustomError("meet_bool", "Expected boolean, received string")
    return value


def only_true(value: Any) -> Any:
    """Meet's `privateAccess`: `true` in any case is true, any other value false."""
    if isinstance(value, str):
        return value.lower() == "true"
    return value


QueryBool = Annotated[bool, BeforeValidator(query_bool)]
TrueOrFalse = Annotated[bool, BeforeValidator(only_true)]


# ------------------------------------------------------------------------- Range


def check_range_header(value: str | None) -> None:
    """One range, `bytes=start-` or `bytes=start-end`; suffix ranges, several ranges and anything else are a 422
    (Meet's rule). Whether it fits the file is `callrec.api.ranges`' business (416, or the whole file)."""
    if value is None:
        return
    if RANGE_FORMAT.fullmatch(value.strip()) is None:
        raise unprocessable([{"field": "headers.range", "message": RANGE_MESSAGE}])


def check_max_items(raw: str | None, field: str = "maxItems") -> int:
    """A `maxItems` query value read by hand: 10 when absent; 422 with Meet's message when not a page size."""
    if raw is None:
        return 10
    try:
        return int(max_items(raw, field))
    except PydanticCustomError as exc:
        raise unprocessable([{"field": field, "message": exc.message()}]) from exc
