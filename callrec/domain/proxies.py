"""`CALLREC_TRUSTED_PROXIES`: the reverse proxies whose `X-Forwarded-Proto` / `X-Forwarded-Host` the API believes.

Comma-separated IP addresses or CIDR networks (`10.0.0.5,192.168.0.0/16,::1`), or a JSON list; empty (the default)
trusts none, so a client cannot choose the host of the absolute URLs the API answers. Checked when settings load.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator
from pydantic_settings import NoDecode

from callrec.domain.setting_lists import split_list

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def network(text: str) -> Network:
    """`text` as a network (an address is a network of one); ValueError naming the value when it is neither."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(
            f"{text!r} is not an IP address or CIDR network (give e.g. 10.0.0.5, 10.0.0.0/8 or ::1, comma-separated)"
        ) from None


def _check(entries: list[str]) -> list[str]:
    return list(dict.fromkeys(str(network(entry)) for entry in entries))


@lru_cache(maxsize=16)
def networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """The checked entries of `CALLREC_TRUSTED_PROXIES` as networks."""
    return tuple(network(entry) for entry in entries)


TrustedProxies = Annotated[list[str], NoDecode, BeforeValidator(split_list), AfterValidator(_check)]


def is_trusted(peer: str | None, networks: tuple[Network, ...]) -> bool:
    """Whether the peer address `peer` lies in one of `networks` (an unparsable or missing address: no)."""
    if not peer or not networks:
        return False
    try:
        address = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == net.version and address in net for net in networks)
