"""`CALLREC_CORS_ORIGINS`: the browser origins allowed to call the API (CORS), checked when settings load."""

from __future__ import annotations

import json
import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator
from pydantic_settings import NoDecode

ANY_ORIGIN = "*"
# An origin as browsers send it: scheme://host[:port], nothing after it.
_ORIGIN = re.compile(r"https?://(?:[a-z0-9.\-]+|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?", re.ASCII)


def _split(value: object) -> object:
    """A JSON list (`["https://a.example"]`) or comma-separated origins (`https://a.example,https://b.example`)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        return json.loads(text)
    return [part.strip() for part in text.split(",") if part.strip()]


def _check(origins: list[str]) -> list[str]:
    checked: list[str] = []
    for origin in origins:
        normal = origin.strip().rstrip("/").lower()
        if normal != ANY_ORIGIN and not _ORIGIN.fullmatch(normal):
            raise ValueError(f"{origin!r} is not an origin: give scheme://host[:port] (no path), or {ANY_ORIGIN!r}")
        checked.append(normal)
    return list(dict.fromkeys(checked))


CorsOrigins = Annotated[list[str], NoDecode, BeforeValidator(_split), AfterValidator(_check)]
