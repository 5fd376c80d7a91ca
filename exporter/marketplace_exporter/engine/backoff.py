"""When to run a check next: its interval with jitter, stretched while the platform throttles us.

A throttled monitor that keeps knocking makes the throttling worse for the seller's own ERP, which
shares the bucket. So after a throttled probe the next one waits for the longer of the platform's
``Retry-After`` and an exponential back-off (interval × 2^n, n = consecutive throttled probes, capped
at 16× the interval), and returns to the plain interval after the first probe that is not throttled.

An adapter may also ask for a pause after a failure that is not throttling (``retry_after_seconds``
on the outcome): Ozon's after an auth failure, because Ozon restricts accounts that keep sending
erroneous requests. That pause is a floor under the interval, not a multiplier.

Both arrive already capped by ``defaults.max_retry_after`` (the runner applies the one cap).
"""

from __future__ import annotations

import random

MAX_BACKOFF_FACTOR = 16


def next_delay(interval: float, jitter: float, *, consecutive_throttles: int,
               retry_after: float | None, rng: random.Random) -> float:
    """Seconds until the next run."""
    base = max(interval, retry_after or 0.0)
    if consecutive_throttles > 0:
        factor = min(2 ** consecutive_throttles, MAX_BACKOFF_FACTOR)
        base = max(interval * factor, base)
    spread = base * jitter
    return max(0.05, base + rng.uniform(-spread, spread))


def first_delay(interval: float, jitter: float, rng: random.Random) -> float:
    """Spread the first runs over a short window so checks of one host do not start together."""
    return rng.uniform(0.0, min(interval, 1.0 + interval * jitter))
