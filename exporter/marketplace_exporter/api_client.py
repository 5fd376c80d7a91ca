"""A short-lived HTTP client for the exporter's own API, used by the CLI commands a pipeline runs
(``deploy mark``, ``deploys list``, ``verify``). httpx, synchronous: one process, a few calls.

Failures become two exceptions with messages an operator can act on, so each command turns them
into a clear line on stderr and a non-zero exit instead of a traceback:

- :class:`ExporterUnreachable`: no HTTP answer (refused, DNS, timeout) — the exporter is down or
  ``--exporter.url`` is wrong;
- :class:`ExporterRefused`: an HTTP answer other than 2xx — wrong token, invalid field, ...; the
  server's ``error`` text is quoted.

The token is read from the environment (never from a flag, so it stays out of ``ps`` and CI logs)
and never appears in an exception message.
"""

from __future__ import annotations

import os
import re
from typing import Any

import httpx

from marketplace_exporter.api_defaults import DEFAULT_EXPORTER_URL, DEFAULT_TOKEN_ENV

#: printable ASCII without spaces: what an HTTP header value can carry as a Bearer token
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")


class ExporterUnreachable(Exception):
    """No HTTP response came back from the exporter."""


class ExporterRefused(Exception):
    """The exporter answered with a non-2xx status."""

    def __init__(self, status: int, message: str, *, retry_after: str | None = None) -> None:
        # status 0: the client itself refused to send (a token no header can carry)
        super().__init__(f"exporter refused the request (HTTP {status}): {message}" if status
                         else f"request not sent: {message}")
        self.status = status
        #: the answer's Retry-After: the exporter says the refusal is temporary (its database is down)
        self.retry_after = retry_after


class ExporterClient:
    """``with ExporterClient(url) as client: client.post("/api/v1/deploys", {...})``."""

    def __init__(self, url: str = DEFAULT_EXPORTER_URL, *, token_env: str = DEFAULT_TOKEN_ENV,
                 timeout: float = 10.0, transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self._token_env = token_env
        headers = {"User-Agent": "marketplace-exporter-cli"}
        token = os.environ.get(token_env, "").strip()  # as the server reads it
        #: a token no header can carry is refused before sending: h11 and the server would both
        #: quote the raw header in their error, putting the token into CI logs
        self._unsendable = bool(token) and not _HEADER_SAFE.fullmatch(token)
        if token and not self._unsendable:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)

    def __enter__(self) -> ExporterClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self._request("GET", path, params=params)

    def post(self, path: str, body: Any, *, timeout: float | None = None) -> Any:
        return self._request("POST", path, json=body, timeout=timeout)

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        if self._unsendable:
            raise ExporterRefused(0, f"the token in {self._token_env} contains spaces, control or non-ASCII "
                                     "characters and cannot be sent as a Bearer token")
        if kwargs.get("timeout") is None:
            kwargs.pop("timeout", None)
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise ExporterUnreachable(f"exporter at {self.url} did not answer in time") from None
        except httpx.TransportError as exc:
            raise ExporterUnreachable(f"cannot reach the exporter at {self.url}: {type(exc).__name__}: "
                                      f"{exc} (is it running? is --exporter.url right?)") from None
        if not response.is_success:
            raise ExporterRefused(response.status_code, _error_text(response),
                                  retry_after=response.headers.get("Retry-After"))
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ExporterRefused(response.status_code, "response is not JSON") from None


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    if isinstance(body, dict) and "error" in body:
        field = f" (field {body['field']})" if "field" in body else ""
        return f"{body['error']}{field}"
    return str(body)[:500]


__all__ = ["DEFAULT_EXPORTER_URL", "ExporterClient", "ExporterRefused", "ExporterUnreachable"]
