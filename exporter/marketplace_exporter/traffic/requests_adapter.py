"""requests: a transport adapter that reports every marketplace call of a ``Session``.

One line to install::

    instrument_session(session, reporter, account="sg-main")

(mounts :class:`TrafficAdapter` for ``https://`` and ``http://``). requests reads a non-streamed
body right after the adapter returns; the adapter reads it one step earlier (the same bytes, kept in
``response.content`` for the caller), so Shopee-style errors in HTTP 200 bodies are seen. With
``stream=True`` the body is left alone and the status and headers decide.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from marketplace_exporter.traffic.classify import MAX_BODY_BYTES, Classifier
from marketplace_exporter.traffic.reporter import Reporter


class TrafficAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` (pool settings as usual via ``**kwargs``) that reports marketplace calls."""

    def __init__(self, reporter: Reporter, *, account: str, site: str | None = None,
                 base_urls: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._reporter = reporter
        self._classifier = Classifier(account=account, site=site, base_urls=base_urls)

    def send(self, request: requests.PreparedRequest, stream: bool = False,  # type: ignore[override]
             **kwargs: Any) -> requests.Response:
        routed = None
        try:
            from urllib.parse import urlsplit

            parts = urlsplit(request.url or "")
            routed = self._classifier.route(parts.netloc, parts.path, parts.query)
        except Exception:  # noqa: BLE001,S110 - an odd URL is simply not reported
            pass
        if routed is None:
            return super().send(request, stream=stream, **kwargs)
        start = time.perf_counter()
        try:
            response = super().send(request, stream=stream, **kwargs)
        except Exception as exc:
            self._reporter.add(self._classifier.failure(routed, exc, time.perf_counter() - start))
            raise
        try:
            body = None
            if not stream:
                body = response.content  # what Session.send would read next anyway
                if len(body) > MAX_BODY_BYTES:
                    body = None
            # requests' CaseInsensitiveDict is a Mapping already: no copy
            self._reporter.add(self._classifier.response(routed, response.status_code, response.headers, body,
                                                         time.perf_counter() - start))
        except requests.RequestException:
            raise  # the body read itself failed: the caller would have seen this error too
        except Exception:  # noqa: BLE001,S110 - reporting must never break the caller
            pass
        return response


def instrument_session(session: requests.Session, reporter: Reporter, *, account: str,
                       site: str | None = None, base_urls: Mapping[str, str] | None = None,
                       **adapter_kwargs: Any) -> TrafficAdapter:
    """Mount one :class:`TrafficAdapter` for both schemes of ``session``; returns it."""
    adapter = TrafficAdapter(reporter, account=account, site=site, base_urls=base_urls, **adapter_kwargs)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return adapter
