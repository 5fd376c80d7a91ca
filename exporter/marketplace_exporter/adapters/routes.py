"""Route tables: which operation a production call performs, from its host and path.

Patterns match the END of the path, so a base-URL prefix (``/shopee`` on the simulator, a proxy's
``/erp-gateway``) changes nothing; ids inside paths are ``[^/]+`` and never reach a label.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from re import Pattern

#: a route table: (compiled pattern matched against the END of the path, operation label)
Routes = Sequence[tuple[Pattern[str], str]]
#: the operation label of a call to a known platform host that no route names
OTHER_OPERATION = "other"


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """The operation a production call performs (one of the adapter's ``api_operations``) and the
    site when the host alone tells it (Lazada's country gateways); None: the caller's own setting."""

    operation: str
    site: str | None = None


def routes(*table: tuple[str, str]) -> tuple[tuple[Pattern[str], str], ...]:
    """Compile ``(path regex, operation)`` pairs (matched against the end of the path)."""
    return tuple((re.compile(f"(?:^|/){pattern.lstrip('/')}/?\\Z"), operation) for pattern, operation in table)


def match_path(table: Routes, path: str, site: str | None = None) -> RouteMatch:
    """The first route whose pattern ends ``path``, else ``other`` (still this marketplace)."""
    path = path[:512]
    for pattern, operation in table:
        if pattern.search(path):
            return RouteMatch(operation, site)
    return RouteMatch(OTHER_OPERATION, site)


def route_operations(table: Routes) -> frozenset[str]:
    """The operation labels a route table names: an adapter's ``api_operations`` (plus any
    operations it names another way, such as AliExpress's ``method=`` APIs)."""
    return frozenset(operation for _, operation in table)


def match_hosts(hosts: frozenset[str], table: Routes, host: str | None, path: str) -> RouteMatch | None:
    """None for a host that is not one of ``hosts``, else the route of ``path``. ``host`` None means
    the caller mapped a base URL (simulator, proxy) to this platform: the path alone decides."""
    if host is not None and host not in hosts:
        return None
    return match_path(table, path)


def host_of(url_or_host: str) -> str:
    """Lower-cased host without scheme, port or path (``https://API.x.com:443/p`` → ``api.x.com``)."""
    host = url_or_host.split("://", 1)[-1].split("/", 1)[0]
    return host.rsplit("@", 1)[-1].split(":", 1)[0].lower()
