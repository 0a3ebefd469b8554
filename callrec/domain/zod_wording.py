"""zod 3's wording, as OpenVidu Meet's validation messages carry it: JSON type names and enum refusals."""

from __future__ import annotations

from collections.abc import Iterable


def json_type(value: object) -> str:
    """The type name zod reports for a received value ("received string")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "number"
    if isinstance(value, float):
        return "nan" if value != value else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def enum_message(options: Iterable[str], value: object) -> str:
    """zod's refusal of a value outside an enum."""
    listed = " | ".join(f"'{option}'" for option in options)
    return f"Invalid enum value. Expected {listed}, received '{value}'"
