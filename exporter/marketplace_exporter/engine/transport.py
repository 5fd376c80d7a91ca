"""Sends one :class:`RequestSpec` with the shared aiohttp session and maps every way it can fail
onto the closed ``Reason`` set. The only module that touches the network for probes.

One ClientSession per process, keep-alive on: httpx measured 9-25x aiohttp's CPU per request on
these machines (bench-anchors.md). Timeouts are not set here: the engine wraps the whole probe in
``asyncio.timeout`` so a token exchange plus a call share one deadline.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping

import aiohttp

from marketplace_exporter.catalogue import Reason
from marketplace_exporter.model import HttpResponse, RequestSpec


class TransportFailure(Exception):
    """The request produced no usable response. ``message`` is safe to show (no URL query)."""

    def __init__(self, reason: Reason, message: str, http_status: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.http_status = http_status


def new_session(*, limit: int) -> aiohttp.ClientSession:
    """The probe session: no client-side timeout (the engine owns it), no cookies (marketplace
    sessions must not leak between accounts), a bounded pool."""
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=0, ttl_dns_cache=300)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=True,
    )


async def send(session: aiohttp.ClientSession, request: RequestSpec, max_body_bytes: int) -> HttpResponse:
    """Send and read at most ``max_body_bytes``; raise :class:`TransportFailure` otherwise."""
    try:
        async with session.request(
            request.method, request.url, params=list(request.query) or None,
            headers=list(request.headers), data=request.body, allow_redirects=False,
        ) as response:
            body = await _read_capped(response, max_body_bytes)
            return HttpResponse(response.status, _lower(response.headers), body)
    except TransportFailure:
        raise
    except (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError, ssl.SSLError) as exc:
        raise TransportFailure(Reason.TLS, f"TLS failure: {type(exc).__name__}") from None
    except aiohttp.ClientConnectorError as exc:
        raise TransportFailure(Reason.CONNECT, f"cannot connect to {exc.host}:{exc.port}: "
                               f"{exc.strerror or type(exc.os_error).__name__}") from None
    except aiohttp.ServerDisconnectedError:
        raise TransportFailure(Reason.CONNECT, "server closed the connection without a response") from None
    except aiohttp.ClientPayloadError:
        raise TransportFailure(Reason.INVALID_RESPONSE, "response body truncated or malformed") from None
    except aiohttp.ClientResponseError as exc:
        raise TransportFailure(Reason.INVALID_RESPONSE, f"malformed HTTP response: {exc.message}"[:200]) from None
    except aiohttp.ClientOSError as exc:
        raise TransportFailure(Reason.CONNECT, f"connection error: {exc.strerror or 'reset'}") from None
    except aiohttp.ClientError as exc:
        raise TransportFailure(Reason.CONNECT, f"HTTP client error: {type(exc).__name__}") from None


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    length = response.content_length
    if length is not None and length > limit:
        raise TransportFailure(Reason.INVALID_RESPONSE,
                               f"response body of {length} bytes exceeds the {limit}-byte limit",
                               http_status=response.status)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise TransportFailure(Reason.INVALID_RESPONSE,
                                   f"response body exceeds the {limit}-byte limit",
                                   http_status=response.status)
        chunks.append(chunk)
    return b"".join(chunks)


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {key.lower(): value for key, value in headers.items()}
