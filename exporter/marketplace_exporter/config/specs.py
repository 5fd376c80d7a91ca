"""What loading a config produces: the checks the engine runs (:class:`CheckSpec`) and the whole
validated config (:class:`LoadedConfig`)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from marketplace_exporter.adapters import Adapter
from marketplace_exporter.adapters.base import StrictModel
from marketplace_exporter.deploys.config import DeploysConfig
from marketplace_exporter.model import Operation
from marketplace_exporter.traffic.settings import TrafficConfig


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """One configured check with every default resolved: what the engine schedules.

    Slotted (50,000 of them at scale: an instance dict cost ~360 bytes each); ``id`` and ``labels``
    are worked out once, at construction."""

    marketplace: str
    site: str
    account: str
    name: str
    adapter: Adapter = field(compare=False)
    operation: Operation
    interval: float
    timeout: float
    jitter: float
    quota_budget: float
    tags: tuple[str, ...]
    base_url: str | None
    auth_url: str | None
    sandbox: bool
    #: the adapter's own Credentials model (None for http/tls checks); the adapter base checks the
    #: type once per probe and hands its steps a typed ProbeContext[Credentials, Params]
    credentials: StrictModel | None = field(compare=False)
    params: StrictModel = field(compare=False)
    #: digest of the config text behind this check: a reload restarts only checks whose digest changed
    fingerprint: str = ""
    #: stable identifier used by ``/probe?check=``: ``marketplace/account/check``
    id: str = field(init=False, compare=False, repr=False)
    #: (marketplace, site, account, check): the probe metrics' labels
    labels: tuple[str, str, str, str] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", f"{self.marketplace}/{self.account}/{self.name}")
        object.__setattr__(self, "labels", (self.marketplace, self.site, self.account, self.name))


@dataclass(frozen=True)
class AccountsFilesSettings:
    """The ``accounts_files:`` entries (globs or directories, relative to the config file's
    directory) and how often they are looked at for changes."""

    patterns: tuple[str, ...] = ()
    base_dir: str = "."
    poll_interval: float = 5.0


@dataclass(frozen=True)
class LoadedConfig:
    path: str
    checks: tuple[CheckSpec, ...]
    max_body_bytes: int
    concurrency: int
    concurrency_per_host: int
    ca_file: str | None = None
    #: (marketplace, api) → removal time: shipped calendar overridden by config
    deprecations: dict[tuple[str, str], float] = field(default_factory=dict)
    #: the ``traffic:`` section (production traffic reports: token, limits, cardinality caps)
    traffic: TrafficConfig = field(default_factory=TrafficConfig)
    #: the ``deploys:`` section (deploy API auth, freeze windows, Grafana annotations)
    deploys: DeploysConfig = field(default_factory=DeploysConfig)
    #: where per-seller accounts files are read from (empty: none)
    accounts_files: AccountsFilesSettings = field(default_factory=AccountsFilesSettings)
    #: the checks the config file itself defines (``checks`` adds those of the accounts files)
    own_checks: tuple[CheckSpec, ...] = ()
    #: what resolving an account from an accounts file needs from this file (its ``defaults``)
    account_context: Any = field(default=None, compare=False, repr=False)
    #: export marketplace_request_duration_seconds (``defaults.request_duration_histogram``)
    request_duration_histogram: bool = True
    #: the cap on a platform's Retry-After, seconds (``defaults.max_retry_after``)
    max_retry_after: float = 900.0

    def by_id(self) -> dict[str, CheckSpec]:
        return {check.id: check for check in self.checks}

    def with_file_checks(self, file_checks: tuple[CheckSpec, ...]) -> LoadedConfig:
        """The same config with the accounts files' checks replaced (the watcher's update)."""
        return replace(self, checks=self.own_checks + file_checks)


__all__ = ["AccountsFilesSettings", "CheckSpec", "LoadedConfig"]
