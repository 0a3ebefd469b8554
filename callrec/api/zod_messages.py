"""Validation messages worded as OpenVidu Meet 3.8 words them.

Meet validates requests with zod 3 and answers `422 {error: "Unprocessable Entity", message: "Invalid request",
details: [{field, message}]}`, each message either one its schemas spell out (kept by the rules in
`callrec.api.validation`) or zod's own default wording for a type, enum or size rule. This module turns pydantic's
error entries into the latter, so that a client matching on Meet's messages reads the same text from callrec.
"""

from __future__ import annotations

import re
from typing import Any

from callrec.domain.zod_wording import enum_message, json_type

# pydantic's wording of a custom rule's message (`ValueError` raised in a validator)
_VALUE_ERROR_PREFIX = "Value error, "
_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'")


def _expected(kind: str, value: object) -> str:
    return f"Expected {kind}, received {json_type(value)}"


def _enum_message(ctx: dict[str, Any], value: object) -> str:
    return enum_message(_QUOTED.findall(str(ctx.get("expected", ""))), value)


def meet_message(err: Any) -> str:
    """zod 3's message for one pydantic error entry (`ValidationError.errors()` item)."""
    kind: str = err.get("type", "")
    ctx: dict[str, Any] = err.get("ctx") or {}
    value = err.get("input")
    message: str = err.get("msg", "")
    if kind == "missing":
        return "Required"
    if kind in ("enum", "literal_error"):
        return _enum_message(ctx, value)
    if kind == "value_error":
        return message.removeprefix(_VALUE_ERROR_PREFIX)
    if kind in ("string_type", "string_sub_type"):
        return _expected("string", value)
    if kind in ("bool_type", "bool_parsing"):
        return _expected("boolean", value)
    if kind in ("int_type", "float_type", "int_parsing", "float_parsing"):
        if isinstance(value, str):
            return "Expected number, received nan"
        return _expected("number", value)
    if kind == "int_from_float":
        return "Expected integer, received float"
    if kind in ("list_type", "tuple_type", "set_type"):
        return _expected("array", value)
    if kind in ("dict_type", "model_type", "model_attributes_type", "dataclass_type"):
        return _expected("object", value)
    if kind == "string_too_short":
        return f"String must contain at least {ctx.get('min_length')} character(s)"
    if kind == "string_too_long":
        return f"String must contain at most {ctx.get('max_length')} character(s)"
    if kind == "too_short":
        return f"Array must contain at least {ctx.get('min_length')} element(s)"
    if kind == "too_long":
        return f"Array must contain at most {ctx.get('max_length')} element(s)"
    if kind == "greater_than_equal":
        return f"Number must be greater than or equal to {ctx.get('ge')}"
    if kind == "greater_than":
        return f"Number must be greater than {ctx.get('gt')}"
    if kind == "less_than_equal":
        return f"Number must be less than or equal to {ctx.get('le')}"
    if kind == "less_than":
        return f"Number must be less than {ctx.get('lt')}"
    if kind == "extra_forbidden":
        return f"Unrecognized key(s) in object: '{err.get('loc', ('',))[-1]}'"
    return message  # custom rules (`PydanticCustomError`) carry Meet's wording already


def meet_field(err: Any) -> str:
    """The `field` of a detail: the path joined with dots, as Meet joins zod's path. An unknown key is reported
    on the object that holds it, as zod's strict objects do."""
    loc = tuple(err.get("loc", ()))
    if err.get("type") == "extra_forbidden":
        loc = loc[:-1]
    return ".".join(str(part) for part in loc)
