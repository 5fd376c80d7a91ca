"""Quota budgets: the exporter never spends more than its configured share of a documented limit.

Marketplaces count calls per seller-and-application, so every call a monitor makes is taken from
the same bucket the seller's ERP uses. SP-API ``getMarketplaceParticipations`` refills at 0.016
requests/s (about one a minute) with a burst of 15: a monitor probing every 10 s would starve
production. Each (marketplace, account, operation) therefore gets two token buckets:

* the **budget** bucket — rate and burst scaled by ``quota_budget`` (default 0.5): a probe is only
  sent when it holds a token, otherwise it is skipped and counted;
* the **modelled** bucket — the documented rate and burst, drained by the exporter's own calls: its
  fill level is exported as ``marketplace_rate_limit_remaining_ratio{source="modelled"}``. It knows
  nothing of production's spend, which is why it is labelled modelled and never passed off as
  observed.

Operations without a documented limit (UNCONFIRMED in the fact sheet) get neither: nothing is
enforced and nothing is modelled.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TokenBucket:
    """Classic token bucket; time is passed in, never read."""

    rate: float
    capacity: float
    tokens: float
    updated_at: float

    @classmethod
    def full(cls, rate: float, capacity: float, now: float) -> TokenBucket:
        return cls(rate=rate, capacity=capacity, tokens=capacity, updated_at=now)

    def refill(self, now: float) -> None:
        if now > self.updated_at:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated_at) * self.rate)
            self.updated_at = now

    def try_take(self, now: float, amount: float = 1.0) -> bool:
        self.refill(now)
        if self.tokens + 1e-9 >= amount:
            self.tokens -= amount
            return True
        return False

    def take(self, now: float, amount: float = 1.0) -> None:
        """Spend even if empty (a call that was sent anyway still costs)."""
        self.refill(now)
        self.tokens = max(0.0, self.tokens - amount)

    def seconds_until(self, now: float, amount: float = 1.0) -> float:
        self.refill(now)
        missing = amount - self.tokens
        return 0.0 if missing <= 0 else missing / self.rate

    def ratio(self, now: float) -> float:
        self.refill(now)
        return self.tokens / self.capacity


BudgetKey = tuple[str, str, str, bool]


class QuotaBudgets:
    """Budget and modelled buckets per (marketplace, account, operation, sandbox)."""

    def __init__(self) -> None:
        self._budget: dict[BudgetKey, TokenBucket] = {}
        self._modelled: dict[BudgetKey, TokenBucket] = {}

    def try_acquire(self, key: BudgetKey, limits: tuple[float, int] | None, fraction: float,
                    now: float) -> float | None:
        """Take one call from the budget. Returns None when allowed, else seconds until allowed."""
        if limits is None:
            return None
        rate, burst = limits
        bucket = self._budget.get(key)
        if bucket is None or bucket.rate != rate * fraction:
            bucket = TokenBucket.full(rate * fraction, max(1.0, float(int(burst * fraction))), now)
            self._budget[key] = bucket
        if bucket.try_take(now):
            return None
        return bucket.seconds_until(now)

    def spend(self, key: BudgetKey, limits: tuple[float, int] | None, now: float) -> float | None:
        """Record a call the exporter sent; return the modelled remaining ratio afterwards."""
        if limits is None:
            return None
        rate, burst = limits
        bucket = self._modelled.get(key)
        if bucket is None or bucket.rate != rate:
            bucket = TokenBucket.full(rate, float(burst), now)
            self._modelled[key] = bucket
        bucket.take(now)
        return bucket.ratio(now)
