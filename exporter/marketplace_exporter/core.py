"""The exporter's core as features see it: one typed object handed to every feature's
``install(core, app)``.

A feature (deploy markers, the verify gate, traffic reports, OTLP, ...) is a module with::

    def install(core: Core, app: web.Application) -> None:
        ...  # add routes, cleanup contexts, a collector to core.registry, a reload hook

and the server lists the imported functions (:data:`marketplace_exporter.server.app.FEATURES`).
Features never import the server module: everything they may use is here, typed. The store is
written by the engine only (and reload state through :meth:`Store.mark_reload` here); features read
it through its query methods.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from aiohttp import web
from prometheus_client import CollectorRegistry

from marketplace_exporter.config import ConfigError, LoadedConfig
from marketplace_exporter.config.accounts_files import AccountsFiles
from marketplace_exporter.config.source import ConfigSource
from marketplace_exporter.engine import Engine
from marketplace_exporter.shard import Shard
from marketplace_exporter.store import Store

log = logging.getLogger(__name__)


def sharded(shard: Shard, config: LoadedConfig) -> LoadedConfig:
    """What ``shard`` runs of ``config``: its own checks, and the config-wide deprecation calendar on
    shard 0 only (so no series is exported by two shards)."""
    if not shard.sharded:
        return config
    return replace(config, checks=shard.select(config.checks),
                   deprecations=config.deprecations if shard.ordinal == 0 else {})


ReloadHook = Callable[[LoadedConfig], None]


@dataclass(eq=False)
class Core:
    """Config source, store, metrics registry, storage location and reload hooks of one exporter."""

    source: ConfigSource
    #: the config the exporter started with (validated before anything listens)
    initial: LoadedConfig
    store: Store = field(default_factory=Store)
    #: the registry ``/metrics`` serves; features register their collectors here
    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))
    #: directory for the exporter's SQLite files (``--storage.path``); None: nothing persisted
    storage_path: str | None = None
    #: which accounts this process probes (``--shard``/``--total-shards``; all of them by default)
    shard: Shard = field(default_factory=Shard)
    _hooks: list[ReloadHook] = field(default_factory=list)
    _engine: Engine | None = None
    _config: LoadedConfig | None = None
    _reloading: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def config(self) -> LoadedConfig:
        """The config running now (the initial one until a reload or an accounts-file change)."""
        return self._config or self.initial

    @property
    def accounts(self) -> AccountsFiles:
        """The accounts files the config names (their state: ok, broken, last good version)."""
        return self.source.accounts

    @property
    def engine(self) -> Engine:
        """The probing engine (started with the app; handlers only run after that)."""
        if self._engine is None:
            raise RuntimeError("the engine is not started yet")
        return self._engine

    @property
    def started(self) -> bool:
        return self._engine is not None and self._engine.config is not None

    def probing_note(self) -> str:
        """`` (1,204 on shard 1 of 3)`` for log lines; empty when not sharded."""
        if not self.shard.sharded or self._engine is None or self._engine.config is None:
            return ""
        return f" ({len(self._engine.config.checks):,} on {self.shard.describe()})"

    def on_reload(self, hook: ReloadHook) -> None:
        """Call ``hook(new_config)`` after every config change (reload or accounts files)."""
        self._hooks.append(hook)

    def start(self, engine: Engine) -> None:
        """The server hands over the engine once its session exists, and applies the initial config."""
        self._engine = engine
        self.apply(self.initial)
        self.store.mark_reload(True, time.time())

    def stop(self) -> None:
        self._engine = None

    def apply(self, config: LoadedConfig) -> None:
        """Run ``config`` now: the engine reconciles this shard's checks, then every reload hook sees
        the whole config."""
        self.engine.apply(sharded(self.shard, config))
        self._config = config
        for hook in self._hooks:
            hook(config)

    def reload(self) -> tuple[bool, str]:
        """Re-read the config. On error the running config stays and the reason is logged/returned."""
        try:
            config = self.source.load()
        except Exception as exc:  # any failure is a failed reload (see _reloaded)
            return self._reloaded(exc)
        return self._reloaded(config)

    async def reload_off_loop(self) -> tuple[bool, str]:
        """:meth:`reload` with the reading and validating in a worker thread (seconds with tens of
        thousands of accounts), so probes keep their timing; reloads run one at a time."""
        async with self._reloading:
            try:
                config = await asyncio.to_thread(self.source.load)
            except Exception as exc:  # any failure is a failed reload (see _reloaded)
                return self._reloaded(exc)
            return self._reloaded(config)

    def _reloaded(self, outcome: LoadedConfig | Exception) -> tuple[bool, str]:
        """Record the outcome. Any exception is a failed reload, not only a :class:`ConfigError`:
        a value the loader did not foresee once answered 500 while
        ``marketplace_exporter_config_last_reload_successful`` stayed 1, so the reload-failed
        alert could never fire for it."""
        if isinstance(outcome, ConfigError):
            self.store.mark_reload(False, time.time())
            log.error("config reload failed, keeping the previous config:\n%s", outcome)
            return False, str(outcome)
        if isinstance(outcome, Exception):
            self.store.mark_reload(False, time.time())
            log.error("config reload failed (internal error), keeping the previous config",
                      exc_info=outcome)
            return False, f"{self.source.path}: internal error while loading ({type(outcome).__name__}); see the log"
        self.apply(outcome)
        self.store.mark_reload(True, time.time())
        log.info("config reloaded: %d checks%s", len(outcome.checks), self.probing_note())
        return True, f"reloaded {len(outcome.checks)} checks"


#: what a feature module exports: ``install(core, app)``
Feature = Callable[[Core, web.Application], None]

__all__ = ["Core", "Feature", "ReloadHook"]
