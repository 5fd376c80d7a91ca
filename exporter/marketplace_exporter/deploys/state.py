"""What the deploy metrics show, folded from the audit log: replayed once at start (so counters and
"latest deploy" survive restarts without being stored twice) and updated by every new marker.

Memory is bounded by the number of service × environment × status combinations, which validation
keeps label-safe; the rows themselves stay in the audit log.

With a log several replicas share (PostgreSQL), rows other replicas wrote arrive later, through
:meth:`DeployState.follow`; ``observe`` ignores a row it already folded in (by id), so a marker this
replica recorded itself is never counted twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from marketplace_exporter.deploys.model import DeployRecord

Target = tuple[str, str]  # (service, environment)


@dataclass
class DeployState:
    #: markers per (service, environment, status)
    counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    #: markers recorded inside a freeze window per (service, environment)
    in_freeze: Counter[Target] = field(default_factory=Counter)
    #: the newest marker per (service, environment)
    latest: dict[Target, DeployRecord] = field(default_factory=dict)
    #: deploy time of the newest marker per (service, environment, status)
    latest_at: dict[tuple[str, str, str], float] = field(default_factory=dict)
    #: Grafana annotation pushes per result ("ok", "failed")
    annotation_pushes: Counter[str] = field(default_factory=Counter)
    #: every row with an id up to this one has been folded in
    watermark: int = field(default=0, compare=False)
    #: ids above the watermark folded in already (this replica's own markers, recorded before
    #: :meth:`follow` read the rows around them)
    ahead: set[int] = field(default_factory=set, compare=False)
    #: the id behind each ``latest_at`` entry: an older row folded in late never overrides it
    latest_at_id: dict[tuple[str, str, str], int] = field(default_factory=dict, compare=False)
    #: distinct services and environments markers named (what the caps count)
    services: set[str] = field(default_factory=set, compare=False)
    environments_seen: set[str] = field(default_factory=set, compare=False)
    #: markers refused by a cap, per reason (``max_services``, ``max_environments``); this process only
    refused: Counter[str] = field(default_factory=Counter, compare=False)

    @classmethod
    def replay(cls, records: Iterable[DeployRecord]) -> DeployState:
        state = cls()
        state.follow(records)
        return state

    def follow(self, records: Iterable[DeployRecord]) -> int:
        """Fold in the rows after :attr:`watermark`, in id order (a shared log's other writers);
        returns how many were new."""
        new = 0
        for record in records:
            if record.id not in self.ahead and record.id > self.watermark:
                self.observe(record)
                new += 1
            self.watermark = max(self.watermark, record.id)
        self.ahead = {row_id for row_id in self.ahead if row_id > self.watermark}
        return new

    def observe(self, record: DeployRecord) -> None:
        """Fold one marker in (records arrive in id order: the last one seen is the newest)."""
        if record.id <= self.watermark or record.id in self.ahead:
            return
        self.ahead.add(record.id)
        self.services.add(record.service)
        self.environments_seen.add(record.environment)
        target = (record.service, record.environment)
        keyed = (*target, record.status.value)
        self.counts[keyed] += 1
        if record.freeze is not None:
            self.in_freeze[target] += 1
        if target not in self.latest or record.id > self.latest[target].id:
            self.latest[target] = record
        if record.id > self.latest_at_id.get(keyed, 0):
            self.latest_at_id[keyed] = record.id
            self.latest_at[keyed] = record.deployed_at

    def environments(self) -> set[str]:
        return {environment for _, environment in self.latest}

    def over_cap(self, service: str, environment: str, max_services: int, max_environments: int) -> str | None:
        """Why a marker naming a new service or environment must be refused (the cap's config key),
        else None. Checked before the row is written; markers for several new names in flight at
        once may each pass the check, so the cap can be exceeded by that many."""
        if service not in self.services and len(self.services) >= max_services:
            return "max_services"
        if environment not in self.environments_seen and len(self.environments_seen) >= max_environments:
            return "max_environments"
        return None


__all__ = ["DeployState"]
