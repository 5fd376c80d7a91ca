"""Defaults shared by the exporter's write APIs and the CLI commands that call them.

A module of constants with no imports, so a pipeline step (`deploy mark`, `verify`) can name them
without loading the server (aiohttp, prometheus_client) it only talks to over HTTP.
"""

from __future__ import annotations

#: the variable that holds the Bearer token for the deploy API when the config does not name another
DEFAULT_TOKEN_ENV = "MARKETPLACE_EXPORTER_DEPLOY_TOKEN"
#: where the CLI finds the exporter unless --exporter.url or $MARKETPLACE_EXPORTER_URL says otherwise
DEFAULT_EXPORTER_URL = "http://127.0.0.1:9761"
