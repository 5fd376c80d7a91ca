"""The deploy metrics, built on each scrape from :class:`DeployState` and the freeze windows.

``marketplace_deploy_verifications_total`` is not emitted here: the verify gate owns that family.
``marketplace_deploy_freeze_active`` has a series for every environment a freeze window names or a
marker used, so "no freeze now" is an explicit 0 a dashboard and an alert can rely on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from marketplace_exporter import catalogue as c
from marketplace_exporter.catalogue import DeployStatus
from marketplace_exporter.deploys.freeze import FreezeWindow, active_freeze, frozen_environments
from marketplace_exporter.deploys.state import DeployState
from marketplace_exporter.metric_families import empty_family as _family

#: the families this collector emits (the verify gate emits DEPLOY_VERIFICATIONS itself)
FAMILIES: tuple[c.MetricSpec, ...] = tuple(spec for spec in c.DEPLOY_METRICS if spec is not c.DEPLOY_VERIFICATIONS)
ANNOTATION_RESULTS = ("ok", "failed")
#: the caps a marker can hit (deploys.max_services, deploys.max_environments), at 0 from the start
REFUSAL_REASONS = ("max_services", "max_environments")


class DeployCollector(Collector):
    def __init__(self, state: Callable[[], DeployState | None],
                 windows: Callable[[], tuple[FreezeWindow, ...]],
                 clock: Callable[[], float] = time.time) -> None:
        self._state = state
        self._windows = windows
        self._clock = clock

    def describe(self) -> Iterable[Metric]:
        return [_family(spec) for spec in FAMILIES]

    def collect(self) -> Iterator[Metric]:
        fams: dict[str, Any] = {spec.name: _family(spec) for spec in FAMILIES}
        state = self._state() or DeployState()
        for (service, environment), record in sorted(state.latest.items()):
            fams[c.DEPLOY_INFO.name].add_metric([service, environment, record.version, record.commit], 1)
        for (service, environment, status), at in sorted(state.latest_at.items()):
            fams[c.DEPLOY_TIMESTAMP.name].add_metric([service, environment, status], at)
        for service, environment in sorted(state.latest):
            # every status of a known target, so rate() sees a 0 before the first failure
            for status in DeployStatus:
                fams[c.DEPLOYS.name].add_metric([service, environment, status.value],
                                                state.counts[(service, environment, status.value)])
            fams[c.DEPLOYS_IN_FREEZE.name].add_metric([service, environment],
                                                      state.in_freeze[(service, environment)])
        windows = self._windows()
        now = self._clock()
        for environment in sorted(set(frozen_environments(windows)) | state.environments()):
            active = active_freeze(windows, environment, now) is not None
            fams[c.DEPLOY_FREEZE_ACTIVE.name].add_metric([environment], 1.0 if active else 0.0)
        for result in ANNOTATION_RESULTS:
            fams[c.ANNOTATION_PUSHES.name].add_metric([result], state.annotation_pushes[result])
        for reason in REFUSAL_REASONS:
            fams[c.DEPLOY_MARKERS_REFUSED.name].add_metric([reason], state.refused[reason])
        yield from fams.values()


__all__ = ["DeployCollector", "FAMILIES"]
