"""The base of the absolute URLs the API answers (`Location` of a created or stopped resource).

`CALLREC_PUBLIC_URL` when it is set; else the scheme and host the request came to. `X-Forwarded-Proto` and
`X-Forwarded-Host` replace those only when the peer is one of `CALLREC_TRUSTED_PROXIES` (default: none), so a
client talking to the API directly cannot make it answer URLs on a host of its choosing; of a list, the last value
counts (the one the trusted peer set). Default ports (80 for
http, 443 for https) are left out, as OpenVidu Meet leaves them out.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from quart import request

from callrec.api.services import services
from callrec.domain.proxies import is_trusted

API_PREFIX = "/api/v1"
FORWARDED_PROTO = "X-Forwarded-Proto"
FORWARDED_HOST = "X-Forwarded-Host"
_HOST = re.compile(r"(?:[A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?", re.ASCII)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def public_base() -> str:
    """`scheme://host[:port][/path]` without a trailing slash, for the current request."""
    settings = services().settings
    if settings.public_url:
        return without_default_port(settings.public_url)
    scheme, host = request.scheme, request.host
    if is_trusted(request.remote_addr, settings.trusted_networks):
        proto = _last(request.headers.get(FORWARDED_PROTO)).lower()
        if proto in _DEFAULT_PORTS:
            scheme = proto
        forwarded = _last(request.headers.get(FORWARDED_HOST))
        if _HOST.fullmatch(forwarded):
            host = forwarded
    if not _HOST.fullmatch(host):  # not a host name: the configured address instead
        return without_default_port(settings.api_url)
    return without_default_port(f"{scheme}://{host}")


def api_url(path: str) -> str:
    """The absolute URL of `path` under `/api/v1` (`path` starts with `/`)."""
    return f"{public_base()}{API_PREFIX}{path}"


def without_default_port(url: str) -> str:
    """`url` without a trailing slash, and without its port when it is its scheme's default."""
    parts = urlsplit(url.strip().rstrip("/"))
    netloc = parts.netloc
    if parts.port is not None and _DEFAULT_PORTS.get(parts.scheme) == parts.port:
        netloc = netloc.rsplit(":", 1)[0]
    return f"{parts.scheme}://{netloc}{parts.path}"


def _last(value: str | None) -> str:
    """The last of a comma-separated header's values: the one the trusted peer set (earlier ones may come from
    anyone in front of it), trimmed."""
    return (value or "").rsplit(",", 1)[-1].strip()
