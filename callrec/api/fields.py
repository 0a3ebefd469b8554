"""Field projection of API objects: `?fields=a,b` or the `X-Fields: a,b` header (the query parameter wins).

Names are comma-separated and trimmed; names the object does not have are ignored. No names (absent,
empty, or only unknown ones) means every field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quart import request

FIELDS_PARAM = "fields"
FIELDS_HEADER = "X-Fields"


def parse_fields(query: str | None, header: str | None = None) -> frozenset[str]:
    """The requested names; the query parameter wins when it names any field, else the header counts."""
    for raw in (query, header):
        names = frozenset(name.strip() for name in (raw or "").split(",")) - {""}
        if names:
            return names
    return frozenset()


def requested_fields() -> frozenset[str]:
    """The names this request asks for (see `parse_fields`)."""
    return parse_fields(request.args.get(FIELDS_PARAM), request.headers.get(FIELDS_HEADER))


def project(view: Mapping[str, Any], fields: frozenset[str]) -> dict[str, Any]:
    """`view` reduced to `fields`, in `view`'s order; all of it when none of `fields` is one of its keys."""
    selected = {key: value for key, value in view.items() if key in fields}
    return selected if selected else dict(view)
