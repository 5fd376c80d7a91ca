"""The status index: what the status page and ``/api/v1/checks`` need, kept sorted as results land.

A status page over 50,000 checks must not sort or scan them on every request (the event loop
would stall and every probe in flight would report the stall as API latency). The store updates
this index when a check changes health (pending → ok/failing, ok ↔ failing: rare) and when a
credential's expiry changes; a request then reads ready-sorted lists and counts.

* check ids sorted per (marketplace, site, health): one ``bisect`` insert/delete per transition.
  A group holds *ordinals* (a check's place among all ids, sorted at the config load) in an
  ``array``, not the id strings in a list: a list lives in the collector's oldest generation and a
  full collection visits each of its items, one cache miss per id (~18 ms of stalled event loop
  at 50,000 checks, every few seconds, measured in bench/scale.py); an array of machine integers
  is not a container the collector walks, and copying it for a request is one ``memcpy``;
* credential expiries sorted by time, split into long-lived credentials (refresh tokens, client
  secrets, authorizations: news a week ahead) and access tokens (renewed routinely: news only when
  expired), so "soon to expire" is a ``bisect`` away.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterable, Mapping, Sequence
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
        #: every check id, sorted: ordinal → id (built at a config load, frozen with the config)
        self._ids: list[str] = []
        self._ordinals: dict[str, int] = {}
        #: ordinals per (marketplace, site, health), sorted (so in id order)
        self._groups: dict[GroupKey, array[int]] = {}
        self._accounts: dict[AccountKey, list[str]] = {}
        self._long_lived: list[tuple[float, CredentialKey]] = []
        self._access: list[tuple[float, CredentialKey]] = []

    def rebuild(self, checks: Iterable[tuple[CheckSpec, Health]],
                credentials: Mapping[CredentialKey, float]) -> None:
        """From scratch (a config load: sorting once is cheaper than inserting one by one)."""
        checks = list(checks)
        ids = sorted(spec.id for spec, _ in checks)
        ordinals = {cid: n for n, cid in enumerate(ids)}
        groups: dict[GroupKey, list[int]] = {}
        accounts: dict[AccountKey, list[str]] = {}
        for spec, health in checks:
            groups.setdefault((spec.marketplace, spec.site, health), []).append(ordinals[spec.id])
            accounts.setdefault((spec.marketplace, spec.site, spec.account), []).append(spec.id)
        self._ids, self._ordinals = ids, ordinals
        self._groups = {key: array("l", sorted(members)) for key, members in groups.items()}
        self._accounts = accounts
        self._long_lived = sorted((at, key) for key, at in credentials.items()
                                  if key[3] is not Credential.ACCESS_TOKEN)
        self._access = sorted((at, key) for key, at in credentials.items() if key[3] is Credential.ACCESS_TOKEN)

    def move(self, spec: CheckSpec, old: Health, new: Health) -> None:
        ordinal = self._ordinals.get(spec.id)
        if old is new or ordinal is None:  # None: not in the config the index was built from
            return
        members = self._groups.get((spec.marketplace, spec.site, old))
        if members is not None:
            at = bisect.bisect_left(members, ordinal)
            if at < len(members) and members[at] == ordinal:
                del members[at]
            if not members:
                del self._groups[(spec.marketplace, spec.site, old)]
        group = self._groups.get((spec.marketplace, spec.site, new))
        if group is None:
            group = self._groups[(spec.marketplace, spec.site, new)] = array("l")
        bisect.insort(group, ordinal)

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
               site: str | None = None) -> list[array[int]]:
        """The sorted ordinal arrays of ``health`` within the filters (read them, never change
        them; :meth:`ids` turns an ordinal back into its check id)."""
        return [members for (m, s, h), members in sorted(self._groups.items(), key=lambda item: item[0][:2])
                if h is health and (marketplace is None or m == marketplace) and (site is None or s == site)]

    def ids(self) -> Sequence[str]:
        """Ordinal → check id for the arrays :meth:`groups` returns now. A config load builds a new
        sequence and leaves this one as it was, so a request that holds it and copies of those
        arrays reads one consistent index however long it yields."""
        return self._ids

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
