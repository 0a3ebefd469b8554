"""Name filters of the list endpoints (GET /rooms, GET /recordings) as OpenVidu Meet validates them."""

from __future__ import annotations

from callrec.api.errors import invalid_parameter
from callrec.storage.textmatch import InvalidPattern, MatchMode, check


def check_name_filter(value: str | None, mode: MatchMode, field: str = "roomName") -> None:
    """422 on `field`, in Meet's wording, for a `regex` filter this service will not run (textmatch.py)."""
    if value is None:
        return
    try:
        check(value, mode)
    except InvalidPattern as exc:
        raise invalid_parameter(field, str(exc)) from exc
