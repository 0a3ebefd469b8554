"""Field projection of API objects: `?fields=a,b` and the `X-Fields: a,b` header.

As in OpenVidu Meet, both count when both are sent: the object keeps the union of the names they give. Names are
comma-separated and trimmed; names the object does not have are ignored. No names (absent, empty, or only unknown
ones) means every field.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from quart import request

FIELDS_PARAM = "fields"
FIELDS_HEADER = "X-Fields"


def parse_fields(query: str | None, header: str | None = None) -> frozenset[str]:
    """The requested names: those of the query parameter and of the header together."""
    return frozenset(name.strip() for raw in (query, header) for name in (raw or "").split(",")) - {""}


def requested_fields() -> frozenset[str]:
    """The names this request asks for (see `parse_fields`)."""
    return parse_fields(request.args.get(FIELDS_PARAM), request.headers.get(FIELDS_HEADER))


def project(view: Mapping[str, Any], fields: frozenset[str], known: Collection[str] | None = None) -> dict[str, Any]:
    """`view` reduced to `fields`, in `view`'s order; all of it when none of `fields` is a known name.

    `known`: the names the object's type has (default: `view`'s keys). A known name the object has no value for
    yet (an `endDate` before the stop) selects nothing for it, as in Meet.
    """
    names = fields & frozenset(view if known is None else known)
    if not names:
        return dict(view)
    return {key: value for key, value in view.items() if key in names}
