"""What ``redact()`` costs per log line: the unbounded redactor of f014b6e against the bounded one.

A review measured 4.2 ms per ``redact()`` with 35,040 registered values: one Walmart account's
15-minute tokens over a year, all still redacted although only the newest is a secret anywhere.
The reference below is that algorithm verbatim (every value ever registered, sorted per call, one
``in`` per value). The bounded redactor keeps the values some owner holds now plus a grace set of
:data:`Redactor.GRACE` recent ones; above :data:`Redactor.INDEX_ABOVE` values it scans a text once
with a prefix index. Prints, asserts nothing.

    .venv/bin/python bench/redactor.py
"""

from __future__ import annotations

import random
import string
import timeit

from marketplace_exporter.secrets import REDACTED, Redactor

LINE = ("2026-12-06 05:01:02 INFO marketplace_exporter.engine: walmart/us-main/items probe finished in "
        "0.231s status=200 correlation=4f1c2a9e-77d1-4e0c-9f0a-2b4f2d1c9e01 host=marketplace.walmartapis.com")
TOKENS_PER_YEAR = 365 * 24 * 4


_RNG = random.Random(11)
_ALPHABET = string.ascii_letters + string.digits + "-_"
#: a shared JWT-style header, as tokens of one issuer have: only the rest is random
_HEADER = "eyJraWQiOiI1MDY3ZDk1ZC1hZjQ1LTRlNjAiLCJhbGciOiJSUzI1NiJ9."


def token(account: int, n: int) -> str:
    """A Walmart-style access token: shared header, then a random body and signature."""
    return _HEADER + "".join(_RNG.choices(_ALPHABET, k=120))


class UnboundedRedactor:
    """The redactor as of f014b6e (reference)."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def register(self, value: str) -> None:
        if len(value) >= 4:
            self._values.add(value)

    def redact(self, text: str) -> str:
        values = sorted(self._values, key=len, reverse=True)
        for value in values:
            if value in text:
                text = text.replace(value, REDACTED)
        return text


def per_call_us(redact: object, text: str, number: int) -> float:
    return timeit.timeit(lambda: redact(text), number=number) / number * 1e6  # type: ignore[operator]


def main() -> None:
    old, new = UnboundedRedactor(), Redactor()
    for n in range(TOKENS_PER_YEAR):
        current = token(0, n)
        old.register(current)
        new.hold("walmart:us-main", current)
    assert new.redact(current) == REDACTED and old.redact(current) == REDACTED
    print(f"one account, a year of 15-minute tokens ({TOKENS_PER_YEAR:,} minted):")
    old_us = per_call_us(old.redact, LINE, 50)
    print(f"  unbounded (f014b6e): {len(old._values):>6,} values  {old_us:9.1f} us per redact()")
    print(f"  bounded (now):       {len(new):>6,} values  {per_call_us(new.redact, LINE, 2000):9.1f} us per redact()")
    for accounts in (1_000, 50_000):
        many = Redactor()
        tokens = [token(account, 1) for account in range(accounts)]
        for account, value in enumerate(tokens):
            many.hold(("minted", account), value)
        text = LINE + " " + tokens[accounts // 2]
        assert many.redact(text).endswith(REDACTED)
        print(f"{accounts:,} accounts, each holding a current token (all must stay redacted):")
        print(f"  bounded (now):       {len(many):>6,} values  {per_call_us(many.redact, text, 500):9.1f} us per "
              f"redact() of a {len(text)}-character line")


if __name__ == "__main__":
    main()
