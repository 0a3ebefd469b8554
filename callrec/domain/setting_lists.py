"""List settings given in one environment variable: a JSON list, or comma-separated values."""

from __future__ import annotations

import json


def split_list(value: object) -> object:
    """`["a", "b"]` or `a,b` (blanks dropped) as a list; anything not a string as it is (pydantic checks it)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        return json.loads(text)
    return [part.strip() for part in text.split(",") if part.strip()]
