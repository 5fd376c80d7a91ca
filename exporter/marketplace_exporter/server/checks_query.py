"""Which checks a status-page or ``/api/v1/checks`` request shows: filters, order, one page.

Order: failing checks first, then checks whose account has a credential about to expire (soonest
first), then pending, then ok; by id within each. The store keeps ids sorted per (marketplace,
site, health) as results land (store_index.py), so a request merges ready-sorted arrays, stops at
the end of its page (the count is the arrays' lengths) and reads only the checks of its page. A text
search (``q``) has to visit every id of the selection to count matches; it yields to the event
loop every :data:`YIELD_EVERY` ids so that a page over 50,000 checks never holds up probes.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from marketplace_exporter.store import CheckStatus, Store
from marketplace_exporter.store_index import EXPIRY_HORIZON, CredentialKey, Health

EXPIRING = "expiring"
STATES: tuple[str, ...] = (Health.FAILING.value, EXPIRING, Health.PENDING.value, Health.OK.value)
PER_PAGE, MAX_PER_PAGE = 100, 1000
YIELD_EVERY = 2000
MAX_QUERY = 200


class FilterInvalid(ValueError):
    """A query parameter the page cannot use; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class CheckFilter:
    marketplace: str | None = None
    site: str | None = None
    state: str | None = None
    q: str | None = None
    page: int = 1
    per_page: int = PER_PAGE

    @classmethod
    def parse(cls, query: Mapping[str, str], *, max_per_page: int = MAX_PER_PAGE) -> CheckFilter:
        """From URL parameters; empty values mean "any"."""
        def text(name: str) -> str | None:
            value = query.get(name, "").strip()
            if len(value) > MAX_QUERY:
                raise FilterInvalid(name, f"at most {MAX_QUERY} characters")
            return value or None

        def number(name: str, default: int, high: int) -> int:
            raw = query.get(name, "").strip()
            if not raw:
                return default
            if not raw.isdigit() or not 1 <= int(raw) <= high:
                raise FilterInvalid(name, f"expected a whole number from 1 to {high}, got {raw[:20]!r}")
            return int(raw)

        state = text("state")
        if state is not None and state not in STATES:
            raise FilterInvalid("state", f"expected one of {', '.join(STATES)}, got {state[:20]!r}")
        return cls(text("marketplace"), text("site"), state, text("q"), number("page", 1, 10**6),
                   number("per_page", PER_PAGE, max_per_page))

    def params(self, **changes: object) -> dict[str, str]:
        """URL parameters of this filter (with ``changes``), defaults left out."""
        values = {"marketplace": self.marketplace, "site": self.site, "state": self.state, "q": self.q,
                  "page": self.page if self.page != 1 else None,
                  "per_page": self.per_page if self.per_page != PER_PAGE else None} | changes
        return {key: str(value) for key, value in values.items() if value is not None}


@dataclass(frozen=True)
class SummaryRow:
    marketplace: str
    site: str
    failing: int
    expiring: int
    pending: int
    ok: int

    @property
    def total(self) -> int:
        return self.failing + self.pending + self.ok


@dataclass(frozen=True)
class ShownCheck:
    status: CheckStatus
    #: the soonest credential expiry that is news for this check's account, if any
    expiring: tuple[float, CredentialKey] | None


@dataclass(frozen=True)
class CheckPage:
    filter: CheckFilter
    total: int
    checks: tuple[ShownCheck, ...]
    summary: tuple[SummaryRow, ...]
    reload_ok: bool

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.filter.per_page))


async def query(store: Store, flt: CheckFilter, now: float) -> CheckPage:
    index = store.index
    expiring = _expiring(store, now)
    wanted = [cid for cid, (_, key) in expiring.items()
              if (flt.marketplace is None or key[0] == flt.marketplace) and (flt.site is None or key[1] == flt.site)]

    ids = index.ids()

    def merged(health: Health) -> Iterator[str]:
        # copies (one memcpy each): results landing while this request yields must not shift the
        # arrays under it; the ids the ordinals stand for are those of the same moment
        ordinals = heapq.merge(*[members[:] for members in index.groups(health, flt.marketplace, flt.site)])
        return (ids[ordinal] for ordinal in ordinals)

    sections: list[Iterable[str]]
    if flt.state == EXPIRING:
        sections = [wanted]
    elif flt.state is not None:
        sections = [merged(Health(flt.state))]
    else:
        sections = [merged(Health.FAILING), (cid for cid in wanted if store.health(cid) is not Health.FAILING),
                    (cid for cid in merged(Health.PENDING) if cid not in expiring),
                    (cid for cid in merged(Health.OK) if cid not in expiring)]
    needle = flt.q.casefold() if flt.q else None
    first, last = (flt.page - 1) * flt.per_page, flt.page * flt.per_page
    shown: list[str] = []
    total = seen = 0
    for section in sections:
        for cid in section:
            seen += 1
            if seen % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            if needle is not None and needle not in cid.casefold():
                continue
            total += 1
            if first < total <= last:
                shown.append(cid)
            if total >= last and needle is None:
                break  # without a text search the count is the lists' lengths: stop at the page
        else:
            continue
        break
    if needle is None:
        healths = list(Health) if flt.state is None else [] if flt.state == EXPIRING else [Health(flt.state)]
        total = len(wanted) if flt.state == EXPIRING else sum(
            len(members) for health in healths for members in index.groups(health, flt.marketplace, flt.site))
    checks = tuple(ShownCheck(status, expiring.get(cid)) for cid in shown
                   if (status := store.status(cid)) is not None)
    return CheckPage(flt, total, checks, _summary(store, expiring), store.reload_state()[0])


def _expiring(store: Store, now: float) -> dict[str, tuple[float, CredentialKey]]:
    """Check id → the soonest credential expiry of its account that is news, soonest first."""
    out: dict[str, tuple[float, CredentialKey]] = {}
    for at, key in store.index.expiring(now, EXPIRY_HORIZON):
        for cid in store.index.checks_of(key[:3]):
            out.setdefault(cid, (at, key))
    return out


def _summary(store: Store, expiring: Mapping[str, tuple[float, CredentialKey]]) -> tuple[SummaryRow, ...]:
    counts = store.index.counts()
    soon: dict[tuple[str, str], int] = {}
    for _, key in expiring.values():
        soon[key[:2]] = soon.get(key[:2], 0) + 1
    return tuple(SummaryRow(marketplace, site, counts.get((marketplace, site, Health.FAILING), 0),
                            soon.get((marketplace, site), 0), counts.get((marketplace, site, Health.PENDING), 0),
                            counts.get((marketplace, site, Health.OK), 0))
                 for marketplace, site in store.index.marketplaces_and_sites())
