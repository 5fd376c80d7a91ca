"""The status index: what the status page and ``/api/v1/checks`` need, kept sorted as results land.

A status page over 50,000 checks must not sort or scan them on every request (the event loop
would stall and every probe in flight would report the stall as API latency). The store updates
this index when a check changes health (pending → ok/failing, ok ↔ failing: rare) and when a
credential's expiry changes; a request then reads ready-sorted lists and counts.

* check ids sorted per (marketplace, site, health): one ``bisect`` insert/delete per transition;
* credential expiries sorted by time, split into long-lived credentials (refresh tokens, client
  secrets, authorizations: news a week ahead) and access tokens (renewed routinely: news only when
  expired), so "soon to expire" is a ``bisect`` away.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import TYPE_CHECKING

from marketplace_exporter.catalogue import Credential

if TYPE_CHECKING:
    from marketplace_exporter.config import CheckSpec

#: (marketplace, site, account)
AccountKey = tuple[str, str, str]
#: (marketplace, site, account, credential)
CredentialKey = tuple[str, str, str, Credential]
GroupKey = tuple[str, str, "Health"]

#: long-lived credentials show as expiring this long ahead (the warning alerts use 7 days too)
EXPIRY_HORIZON = 7 * 86400.0


class Health(StrEnum):
    """A check's state on the status page, worst first."""

    FAILING = "failing"
    PENDING = "pending"
    OK = "ok"


class StatusIndex:
    def __init__(self) -> None:
        self._groups: dict[GroupKey, list[str]] = {}
        self._accounts: dict[AccountKey, list[str]] = {}
        self._long_lived: list[tuple[float, CredentialKey]] = []
        self._access: list[tuple[float, CredentialKey]] = []

    def rebuild(self, checks: Iterable[tuple[CheckSpec, Health]],
                credentials: Mapping[CredentialKey, float]) -> None:
        """From scratch (a config load: sorting once is cheaper than inserting one by one)."""
        groups: dict[GroupKey, list[str]] = {}
        accounts: dict[AccountKey, list[str]] = {}
        for spec, health in checks:
            groups.setdefault((spec.marketplace, spec.site, health), []).append(spec.id)
            accounts.setdefault((spec.marketplace, spec.site, spec.account), []).append(spec.id)
        for ids in groups.values():
            ids.sort()
        self._groups, self._accounts = groups, accounts
        self._long_lived = sorted((at, key) for key, at in credentials.items()
                                  if key[3] is not Credential.ACCESS_TOKEN)
        self._access = sorted((at, key) for key, at in credentials.items() if key[3] is Credential.ACCESS_TOKEN)

    def move(self, spec: CheckSpec, old: Health, new: Health) -> None:
        if old is new:
            return
        ids = self._groups.get((spec.marketplace, spec.site, old))
        if ids is not None:
            at = bisect.bisect_left(ids, spec.id)
            if at < len(ids) and ids[at] == spec.id:
                del ids[at]
            if not ids:
                del self._groups[(spec.marketplace, spec.site, old)]
        bisect.insort(self._groups.setdefault((spec.marketplace, spec.site, new), []), spec.id)

    def credential(self, key: CredentialKey, old: float | None, new: float) -> None:
        expiries = self._access if key[3] is Credential.ACCESS_TOKEN else self._long_lived
        if old is not None:
            at = bisect.bisect_left(expiries, (old, key))
            if at < len(expiries) and expiries[at] == (old, key):
                del expiries[at]
        bisect.insort(expiries, (new, key))

    # --- queries ---------------------------------------------------------------------------

    def counts(self) -> dict[GroupKey, int]:
        """Checks per (marketplace, site, health)."""
        return {key: len(ids) for key, ids in self._groups.items()}

    def groups(self, health: Health, marketplace: str | None = None,
               site: str | None = None) -> list[list[str]]:
        """The sorted id lists of ``health`` within the filters (read them, never change them)."""
        return [ids for (m, s, h), ids in sorted(self._groups.items(), key=lambda item: item[0][:2])
                if h is health and (marketplace is None or m == marketplace) and (site is None or s == site)]

    def marketplaces_and_sites(self) -> list[tuple[str, str]]:
        return sorted({key[:2] for key in self._groups})

    def checks_of(self, account: AccountKey) -> list[str]:
        return list(self._accounts.get(account, ()))

    def expiring(self, now: float, horizon: float = EXPIRY_HORIZON) -> list[tuple[float, CredentialKey]]:
        """Credentials that are news, soonest first: long-lived ones expiring within ``horizon``
        (or expired), access tokens that have expired."""
        soon = self._long_lived[:bisect.bisect_left(self._long_lived, (now + horizon,))]
        expired = self._access[:bisect.bisect_right(self._access, (now, _MAX_KEY))]
        return sorted(soon + expired)


#: sorts after every real key with the same time (bisect_right on (now, key) includes time == now)
_MAX_KEY: CredentialKey = ("\U0010ffff", "", "", Credential.ACCESS_TOKEN)
