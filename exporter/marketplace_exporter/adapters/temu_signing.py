"""Temu Open Platform request signing, as pure functions (docs/marketplaces/temu.md, [J1 dg/13]).

The algorithm, as Temu's developer guide states it [J1 dg/13]:

1. take every request parameter, common and business, except ``sign``;
2. sort the keys ASCII-ascending;
3. concatenate ``key + value`` with no separators;
4. put the ``app_secret`` at the head and the tail;
5. MD5 over the UTF-8 bytes, hex **uppercase**.

How a value becomes text follows Temu's own Python example [J1 dg/17]: compact JSON
(``ensure_ascii=False``, ``separators=(',', ':')``) with the outer quotes of a string removed, so
strings are themselves (JSON-escaped inside), numbers are digits and objects/arrays are compact JSON
in the order they are given. Whether the gateway canonicalises the key order of *nested* objects is
UNCONFIRMED (the worked example signs nested keys in another order than the body it sends), so
:func:`request_body` serialises the body with the very same function the signature uses: what is
signed is byte-for-byte what is sent.

The simulator verifies with these same functions, which is why the unit tests pin Temu's official
worked example (app_secret ``c7e0…c290`` → ``4CCF2199…838F``) computed independently.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

#: never signed [J1 dg/13]
EXCLUDED = frozenset({"sign"})


def value_text(value: object) -> str:
    """A parameter value as Temu's example serialises it: compact JSON, outer string quotes removed.

    A string is JSON-escaped inside (``a"b`` → ``a\\"b``); how the gateway treats a string that
    itself ends in an escaped quote is UNCONFIRMED (exactly one pair of outer quotes is removed)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, str):
        return text[1:-1]
    return text


def base_string(app_secret: str, params: Mapping[str, object]) -> str:
    """``app_secret + concat(key + value for keys sorted ASCII-ascending, sign excluded) + app_secret``."""
    signed = "".join(f"{key}{value_text(params[key])}" for key in sorted(params) if key not in EXCLUDED)
    return f"{app_secret}{signed}{app_secret}"


def sign(app_secret: str, params: Mapping[str, object]) -> str:
    """The ``sign`` parameter: MD5 of :func:`base_string` over UTF-8, uppercase hex [J1 dg/13]."""
    return hashlib.md5(base_string(app_secret, params).encode("utf-8")).hexdigest().upper()


def request_body(app_secret: str, params: Mapping[str, object]) -> bytes:
    """The JSON body to POST: ``params`` plus their ``sign``, serialised exactly as signed."""
    signed = {**{key: value for key, value in params.items() if key not in EXCLUDED},
              "sign": sign(app_secret, params)}
    return json.dumps(signed, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
