"""`CALLREC_CORS_ORIGINS`: the browser origins allowed to call the API (CORS), checked when settings load."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator
from pydantic_settings import NoDecode

from callrec.domain.setting_lists import split_list

ANY_ORIGIN = "*"
# An origin as browsers send it: scheme://host[:port], nothing after it.
_ORIGIN = re.compile(r"https?://(?:[a-z0-9.\-]+|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?", re.ASCII)


def _check(origins: list[str]) -> list[str]:
    checked: list[str] = []
    for origin in origins:
        normal = origin.strip().rstrip("/").lower()
        if normal != ANY_ORIGIN and not _ORIGIN.fullmatch(normal):
            raise ValueError(f"{origin!r} is not an origin: give scheme://host[:port] (no path), or {ANY_ORIGIN!r}")
        checked.append(normal)
    return list(dict.fromkeys(checked))


CorsOrigins = Annotated[list[str], NoDecode, BeforeValidator(split_list), AfterValidator(_check)]
