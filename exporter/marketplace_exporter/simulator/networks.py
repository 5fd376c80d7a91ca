"""Source-address allow-lists, as platforms with "allowed networks" or IP whitelists check them
(Temu's declared server IPs, Ozon's per-key allowed networks)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable


def source_allowed(remote: str | None, networks: Iterable[str]) -> bool:
    """Whether the peer address ``remote`` lies in one of ``networks`` (CIDR strings)."""
    try:
        address = ipaddress.ip_address(remote or "")
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(network) for network in networks)
