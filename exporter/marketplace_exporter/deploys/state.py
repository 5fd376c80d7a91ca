"""What the deploy metrics show, folded from the audit log: replayed once at start (so counters and
"latest deploy" survive restarts without being stored twice) and updated by every new marker.

Memory is bounded by the number of service × environment × status combinations, which validation
keeps label-safe; the rows themselves stay in SQLite.
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

    @classmethod
    def replay(cls, records: Iterable[DeployRecord]) -> DeployState:
        state = cls()
        for record in records:
            state.observe(record)
        return state

    def observe(self, record: DeployRecord) -> None:
        """Fold one marker in (records arrive in id order: the last one seen is the newest)."""
        target = (record.service, record.environment)
        keyed = (*target, record.status.value)
        self.counts[keyed] += 1
        if record.freeze is not None:
            self.in_freeze[target] += 1
        self.latest[target] = record
        self.latest_at[keyed] = record.deployed_at

    def environments(self) -> set[str]:
        return {environment for _, environment in self.latest}


__all__ = ["DeployState"]
