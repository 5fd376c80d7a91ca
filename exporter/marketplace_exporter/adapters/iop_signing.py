"""Alibaba IOP request signing, shared by Lazada (Lazop) and AliExpress (the new IOP gateway).

Facts and source tags (resolved in docs/marketplaces/sources.md)::

    sign = HEX_UPPER(HMAC-SHA256(app_secret, PREFIX + k1 v1 k2 v2 …))

over every request parameter except ``sign`` (and file/byte-array parameters, which no probe sends),
sorted by name in ASCII order, each name followed by its value with no separator [D2][D5][E1]. The
prefix is the one place the two platforms differ:

* Lazada prefixes the API path of every call (``/seller/get``, ``/auth/token/refresh``) [D2][D5];
* AliExpress prefixes the API path only for path-style system APIs (``/auth/token/create`` under
  ``/rest``); business APIs under ``/sync`` are addressed by the ``method`` parameter, which is
  signed like any other, and nothing is prefixed [E1][E8]. The official IOP SDK decides the same
  way: a prefix when the API name contains ``/`` [E1] — :func:`iop_prefix`.

The path is always the API path, never a base-URL prefix: a request sent to
``http://127.0.0.1:9763/lazada/sg/rest/seller/get`` still signs ``/seller/get``.

Empty values: the official Java sample on Lazada's signature page [X1] skips parameters whose value
is empty, while the Python SDK concatenates them (a bare key) [D1]. No probe sends an empty value, so the
adapters never meet the difference; :func:`signature_matches` (used by the simulator) accepts
either reading.

All functions are pure; every fact-sheet vector is a unit test (tests/unit/test_iop_signing.py).
[X…] tags are sources read for these adapters beyond the fact sheet, listed in
docs/marketplaces/lazada.md and aliexpress.md.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime

SIGN_METHOD = "sha256"  # the only method the probes send [D1][D5][E1]
_SKIPPED = frozenset({"sign"})


def iop_prefix(api_name: str) -> str:
    """The signed prefix for an API name as the official IOP SDK computes it [E1]: the name itself
    for path-style APIs (``/auth/token/create``), nothing for ``method=`` business APIs."""
    return api_name if "/" in api_name else ""


def base_string(params: Mapping[str, str], api_path: str = "", *, keep_empty: bool = False) -> str:
    """``api_path`` + the sorted ``keyvalue`` pairs of ``params`` (``sign`` excluded).

    ``api_path`` is ``""`` for AliExpress ``/sync`` business APIs, otherwise the API path starting
    with ``/``. ``keep_empty`` concatenates empty values as bare keys (Python SDK); by default they
    are skipped (Java sample).
    """
    if api_path and not api_path.startswith("/"):
        raise ValueError("api_path must be empty or an API path starting with '/'")
    if "://" in api_path or api_path.startswith("//"):
        raise ValueError("api_path is the API path only, never a URL")
    pairs = "".join(f"{key}{value}" for key, value in sorted(params.items())
                    if key not in _SKIPPED and (keep_empty or value != ""))
    return api_path + pairs


def hmac_sha256_upper(secret: str, message: str) -> str:
    """HMAC-SHA256 over UTF-8, hex UPPERCASE [D2][E1]."""
    return hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest().upper()


def sign(secret: str, params: Mapping[str, str], api_path: str = "") -> str:
    """The ``sign`` parameter for ``params`` (``sign`` itself, if present, is ignored)."""
    return hmac_sha256_upper(secret, base_string(params, api_path))


def signature_matches(secret: str, params: Mapping[str, str], given: str, api_path: str = "") -> bool:
    """Constant-time check of a received ``sign`` (case-sensitive: the platforms send uppercase).
    With empty values present both SDK readings are accepted (see the module docstring)."""
    candidates = {base_string(params, api_path), base_string(params, api_path, keep_empty=True)}
    return any(hmac.compare_digest(hmac_sha256_upper(secret, c).encode(), given.encode())
               for c in candidates)


def timestamp_ms(now: float) -> str:
    """The ``timestamp`` system parameter: Unix time in milliseconds [D5][E1]."""
    return str(int(now * 1000))


def parse_timestamp(raw: str) -> float | None:
    """A received ``timestamp`` as Unix seconds: milliseconds since the epoch, or ISO-8601 UTC such
    as ``2017-11-11T12:00:00Z`` (Lazada accepts both [D5]). None for anything else."""
    raw = raw.strip()
    if raw.isascii() and raw.isdigit() and 10 <= len(raw) <= 15:
        return int(raw) / 1000.0
    if not raw.isascii() or len(raw) > 40 or "T" not in raw:
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
