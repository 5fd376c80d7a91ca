"""The web flags every server command shares (``run``, ``demo``, ``bridge``) and what they mean,
without importing aiohttp: building the command line must stay cheap for client commands
(tests/unit/test_cli_startup.py)."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

_SEGMENT = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@%-]+")


@dataclass(frozen=True)
class WebOptions:
    config_file: str | None = None
    enable_lifecycle: bool = False
    #: the URL users reach the server at (behind a proxy); None: the listen address
    external_url: str | None = None
    #: where the routes are served, "/" or "/path" (no trailing slash)
    route_prefix: str = "/"


def add_web_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--web.config.file", dest="web_config_file", metavar="FILE", default=None,
                        help="TLS and basic auth: a web config in the exporter-toolkit format, the file "
                             "node_exporter and Prometheus read (docs/security.md); re-read when it changes")
    parser.add_argument("--web.enable-lifecycle", dest="web_enable_lifecycle", action="store_true",
                        help="accept POST /-/reload (off by default, as in Prometheus; SIGHUP always works)")
    parser.add_argument("--web.external-url", dest="web_external_url", metavar="URL", default=None,
                        help="the URL users reach this server at behind a reverse proxy, e.g. "
                             "https://ops.example.com/exporter/ (its path is the default route prefix)")
    parser.add_argument("--web.route-prefix", dest="web_route_prefix", metavar="PATH", default=None,
                        help="serve every route under this path (default: the path of --web.external-url, else /)")


def web_options(args: argparse.Namespace) -> WebOptions:
    """The flags as options; a malformed URL or prefix stops the command with one line naming the flag."""
    external = args.web_external_url
    if external is not None:
        parts = urlsplit(external)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SystemExit(f"--web.external-url: expected an absolute http(s) URL, got {external!r}")
    prefix = args.web_route_prefix
    if prefix is None:
        prefix = urlsplit(external).path if external else "/"
    try:
        prefix = normalized_prefix(prefix)
    except ValueError as exc:
        raise SystemExit(f"--web.route-prefix: {exc}") from None
    return WebOptions(args.web_config_file, args.web_enable_lifecycle, external, prefix)


def normalized_prefix(prefix: str) -> str:
    """``"/"`` or ``"/a/b"`` (leading slash added, trailing slash dropped)."""
    stripped = prefix.strip("/")
    if not stripped:
        return "/"
    for segment in stripped.split("/"):
        if segment in ("", ".", "..") or not _SEGMENT.fullmatch(segment):
            raise ValueError(f"expected a URL path such as /exporter, got {prefix!r}")
    return "/" + stripped


__all__ = ["WebOptions", "add_web_flags", "normalized_prefix", "web_options"]
