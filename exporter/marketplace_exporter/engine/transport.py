"""Sends one :class:`RequestSpec` with the shared aiohttp session and maps every way it can fail
onto the closed ``Reason`` set. The only module that touches the network for probes.

One ClientSession per process, keep-alive on: httpx measured 9-25x aiohttp's CPU per request on
these machines (bench-anchors.md). Timeouts are not set here: the engine wraps the whole probe in
``asyncio.timeout`` so a token exchange plus a call share one deadline.

The body limit (``defaults.max_body_bytes``) bounds the DECODED body, whatever the encoding: a
512 KiB gzip answer inflates to 512 MiB, so a limit checked on ``Content-Length`` (the bytes on the
wire) let four hostile checks take the exporter past a gigabyte (issue 14). The session asks for
``gzip, deflate`` only (:data:`ACCEPT_ENCODING`), and an encoded body is always streamed and
counted after decoding: aiohttp (>= 3.13.3) inflates at most a buffer at a time, so a bomb stops
at the limit plus one chunk, for any encoding aiohttp decodes (br/zstd too, if a server sends them
unasked and their libraries are installed).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Mapping

import aiohttp

from marketplace_exporter.catalogue import Reason
from marketplace_exporter.header_values import request_problem
from marketplace_exporter.model import HttpResponse, RequestSpec

#: what the probe session asks for: the encodings the decoded-size tests cover (aiohttp would add
#: ``br``/``zstd`` whenever Brotli or zstd happen to be installed)
ACCEPT_ENCODING = "gzip, deflate"
#: bytes taken from the (decoded) body stream at a time
_CHUNK = 64 * 1024


class TransportFailure(Exception):
    """The request produced no usable response. ``message`` is safe to show (no URL query)."""

    def __init__(self, reason: Reason, message: str, http_status: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.http_status = http_status


def tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    """Verification context for probes: the system CAs plus ``ca_file`` (an ERP behind an internal
    CA, a test simulator with a self-signed certificate)."""
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=ca_file)
    return context


def new_session(*, limit: int, context: ssl.SSLContext | None = None) -> aiohttp.ClientSession:
    """The probe session: no client-side timeout (the engine owns it), no cookies (marketplace
    sessions must not leak between accounts), a bounded pool."""
    context = context or tls_context()
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=0, ttl_dns_cache=300, ssl=context)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=True,
        headers={"Accept-Encoding": ACCEPT_ENCODING},
    )


async def send(session: aiohttp.ClientSession, request: RequestSpec, max_body_bytes: int) -> HttpResponse:
    """Send and read at most ``max_body_bytes``; raise :class:`TransportFailure` otherwise."""
    if (problem := request_problem(request.headers)) is not None:
        # aiohttp would raise ValueError (an ``internal`` failure with a traceback) for what is a
        # malformed credential, e.g. a token file rewritten with a line break in it
        raise TransportFailure(Reason.AUTH, f"request not sent: {problem}")
    try:
        async with session.request(
            request.method, request.url, params=request.query or None,
            headers=request.headers, data=request.body, allow_redirects=False,
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


def _read_capped(response: aiohttp.ClientResponse, limit: int) -> Awaitable[bytes]:
    """The body, decoded, if it is at most ``limit`` bytes decoded. ``Content-Length`` counts the
    bytes on the wire: over the limit it is refused unread; within it, only an unencoded body is
    read in one go (its decoded size is that length); an encoded one is counted as it inflates.
    Not a coroutine itself: the usual body is aiohttp's own ``read()``, awaited by the caller."""
    length = response.content_length
    if length is not None and length > limit:
        raise TransportFailure(Reason.INVALID_RESPONSE,
                               f"response body of {length} bytes exceeds the {limit}-byte limit",
                               http_status=response.status)
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if length is not None and encoding in ("", "identity"):
        return response.read()  # announced, unencoded and within the limit: one read
    return _read_counted(response, limit, encoding)


async def _read_counted(response: aiohttp.ClientResponse, limit: int, encoding: str) -> bytes:
    """The (decoded) body stream, counted chunk by chunk against ``limit``."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > limit:
            decoded = " once decoded" if encoding not in ("", "identity") else ""
            raise TransportFailure(Reason.INVALID_RESPONSE,
                                   f"response body exceeds the {limit}-byte limit{decoded}",
                                   http_status=response.status)
        chunks.append(chunk)
    return b"".join(chunks)


class CertificateWatcher:
    """Reads the certificate each https host presents, at most once per ``ttl`` per host.

    aiohttp releases a connection as soon as a small body is read, so the certificate cannot be
    taken from the probe's own response; one extra verified handshake per host per hour is the
    honest price. Failures return None (the probe itself reports handshake problems as ``tls``).
    """

    def __init__(self, context: ssl.SSLContext, *, ttl: float = 3600.0, timeout: float = 5.0) -> None:
        self._context = context
        self._ttl = ttl
        self._timeout = timeout
        self._seen: dict[tuple[str, int], tuple[float, float | None]] = {}

    async def not_after(self, host: str, port: int, now: float) -> float | None:
        cached = self._seen.get((host, port))
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        expiry = await self._handshake(host, port)
        self._seen[(host, port)] = (now, expiry)
        return expiry

    async def _handshake(self, host: str, port: int) -> float | None:
        try:
            async with asyncio.timeout(self._timeout):
                _, writer = await asyncio.open_connection(host, port, ssl=self._context, server_hostname=host)
        except (OSError, ssl.SSLError, TimeoutError):
            return None
        try:
            cert = writer.get_extra_info("peercert")
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()
        not_after = cert.get("notAfter") if isinstance(cert, dict) else None
        if not isinstance(not_after, str):
            return None
        try:
            return float(ssl.cert_time_to_seconds(not_after))
        except ValueError:
            return None


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {key.lower(): value for key, value in headers.items()}
