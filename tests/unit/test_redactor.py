"""The secret redactor is bounded: it redacts every value some owner holds now (a Secret, a token
file, a cached minted token) plus a small grace set of recently replaced ones, and forgets the rest,
so a year of 15-minute tokens no longer costs every log line milliseconds."""

from __future__ import annotations

import gc
import random

from marketplace_exporter.model import TokenCache
from marketplace_exporter.secrets import REDACTED, REDACTOR, Redactor, Secret


def token(n: int) -> str:
    return f"wm-access-{n:06d}-Zk3"


def test_a_rotating_token_keeps_the_redactor_bounded_and_the_current_value_redacted() -> None:
    redactor = Redactor()
    for n in range(35_040):  # one Walmart account's 15-minute tokens over a year
        redactor.hold("walmart:us-main", token(n))
    assert len(redactor) == 1 + Redactor.GRACE
    assert redactor.redact(f"Authorization: Bearer {token(35_039)}") == f"Authorization: Bearer {REDACTED}"
    assert redactor.redact(f"late log line {token(35_038)}") == f"late log line {REDACTED}"  # grace
    assert redactor.redact(f"old {token(0)}") == f"old {token(0)}"  # forgotten: no longer a secret anywhere


def test_a_value_two_owners_hold_stays_current_until_both_let_go() -> None:
    redactor = Redactor()
    redactor.hold("a", "shared-secret-value")
    redactor.hold("b", "shared-secret-value")
    redactor.release("a")
    for n in range(Redactor.GRACE + 5):
        redactor.register(f"noise-{n:04d}")  # pushes anything only in the grace set out
    assert redactor.redact("x shared-secret-value") == f"x {REDACTED}"
    redactor.release("b")
    assert redactor.redact("x shared-secret-value") == f"x {REDACTED}"  # just released: grace
    for n in range(Redactor.GRACE + 5):
        redactor.register(f"more-noise-{n:04d}")
    assert redactor.redact("x shared-secret-value") == "x shared-secret-value"


def test_many_current_values_are_all_redacted_longest_first() -> None:
    redactor = Redactor()
    values = [f"tok-{n:05d}-{'q' * (n % 7)}" for n in range(5_000)]
    for n, value in enumerate(values):
        redactor.hold(("minted", n), value)
    redactor.hold("long", "tok-00001-q-and-more")
    text = " | ".join(values[::97]) + " tok-00001-q-and-more tok-0000 tail"
    redacted = redactor.redact(text)
    assert "tok-0" not in redacted.replace("tok-0000 tail", "")
    assert redacted.count(REDACTED) == len(values[::97]) + 1
    assert redacted.endswith(f"{REDACTED} tok-0000 tail")


def test_both_scans_leave_no_registered_value_in_any_text() -> None:
    """Few values: one ``in`` per value; many: one pass with a prefix index. Either is complete."""
    rng = random.Random(7)
    values = sorted({"".join(rng.choices("ab1-", k=rng.randint(4, 9))) for _ in range(300)})
    plain, indexed = Redactor(), Redactor()
    plain.INDEX_ABOVE = 10**9
    for value in values:
        plain.hold(value, value)
        indexed.hold(value, value)
    assert len(values) > Redactor.INDEX_ABOVE
    for _ in range(300):
        pieces = rng.choices([*values, " ", "x", "Z1"], k=rng.randint(0, 12))
        text = "".join(pieces)
        for masked in (plain.redact(text), indexed.redact(text)):
            shown = masked.replace(REDACTED, "\0")
            assert not [value for value in values if value in shown], (text, masked)


def test_a_secret_is_redacted_while_it_exists_and_forgotten_after() -> None:
    secret = Secret.literal("literal-secret-9f8e7d")
    secret.reveal()
    assert REDACTOR.redact("v=literal-secret-9f8e7d") == f"v={REDACTED}"
    del secret
    gc.collect()
    assert REDACTOR.redact("v=literal-secret-9f8e7d") == f"v={REDACTED}"  # grace
    for n in range(Redactor.GRACE + 1):
        REDACTOR.register(f"unrelated-value-{n:05d}")
    assert REDACTOR.redact("v=literal-secret-9f8e7d") == "v=literal-secret-9f8e7d"


def test_the_engine_token_cache_holds_what_it_caches() -> None:
    cache = TokenCache()
    cache.put("walmart:acct", "minted-token-000001", 1e12)
    cache.put("walmart:acct", "minted-token-000002", 1e12)
    assert REDACTOR.redact("minted-token-000002") == REDACTED
    cache.drop("walmart:acct")
    for n in range(Redactor.GRACE + 2):
        REDACTOR.register(f"filler-value-{n:05d}")
    assert REDACTOR.redact("minted-token-000002 minted-token-000001") == "minted-token-000002 minted-token-000001"
