"""Read a ``mixin.yml`` into an :class:`AlertConfig`: any field by name, nested as in the dataclasses.

Validation is pydantic's over the frozen dataclasses (unknown keys are errors, so a typo never
silently keeps a default), plus the checks a type cannot say: Prometheus durations, the platform
labels, label names. Every error names the file, the key and what was expected::

    mixin.yml: routing.teams[0].receiver: Field required
    mixin.yml: latency_window: expected a Prometheus duration such as 15m or 1h30m, got '15 minutes'
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ConfigDict, TypeAdapter, ValidationError

from marketplace_exporter import catalogue as c
from marketplace_exporter.mixin import config as mc

_DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+\Z")
_DURATION_SUFFIXES = ("_for", "_window", "_interval", "_wait", "_baseline", "_history")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*\Z")
_TAG = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,31}\Z")
#: labels the rules and the routing set or match on themselves
_RESERVED = {"alertname", "severity", "component", "credential", "long_window", "short_window",
             *c.PROBE_LABELS, c.REASON, c.CODE}

for _cls in (mc.AlertConfig, mc.Routing, mc.Team, mc.QuietHours, mc.Fallback, mc.Heartbeat,
             mc.BurnWindow, mc.CredentialExpiry):
    setattr(_cls, "__pydantic_config__", ConfigDict(extra="forbid"))  # noqa: B010 (pydantic reads it)

_ADAPTER: TypeAdapter[mc.AlertConfig] = TypeAdapter(mc.AlertConfig)


class MixinConfigError(ValueError):
    """A mixin config that cannot be used; ``errors`` are ``"file: key: problem"`` lines."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def parse(data: Any, source: str = "mixin config") -> mc.AlertConfig:
    """``data`` (a mapping, e.g. parsed YAML) → AlertConfig, or MixinConfigError naming each problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise MixinConfigError([f"{source}: expected a mapping of AlertConfig fields, got {type(data).__name__}"])
    try:
        cfg = _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise MixinConfigError([f"{source}: {_loc(tuple(e['loc']))}: {e['msg']}" for e in exc.errors()]) from None
    problems = [f"{source}: {problem}" for problem in check(cfg)]
    if problems:
        raise MixinConfigError(problems)
    return cfg


def load(path: str | Path) -> mc.AlertConfig:
    """Read and validate a mixin.yml."""
    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MixinConfigError([f"{file}: cannot read: {exc.strerror or exc}"]) from None
    except yaml.YAMLError as exc:
        raise MixinConfigError([f"{file}: not valid YAML: {exc}"]) from None
    return parse(data, str(file))


def _durations(obj: Any, prefix: str = "") -> list[str]:
    problems = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            problems += _durations(value, key + ".")
        elif isinstance(value, str) and f.name.endswith(_DURATION_SUFFIXES) and not _DURATION.match(value):
            problems.append(f"{key}: expected a Prometheus duration such as 15m or 1h30m, got {value!r}")
    return problems


def check(cfg: mc.AlertConfig) -> list[str]:
    """What a type cannot say; empty when the config is usable."""
    problems = _durations(cfg)
    if c.MARKETPLACE not in cfg.platform_by or not set(cfg.platform_by) <= {c.MARKETPLACE, c.SITE}:
        problems.append(f"platform_by: expected [marketplace] or [marketplace, site], got {list(cfg.platform_by)}")
    unknown = sorted(set(cfg.platform_reasons) - {str(r) for r in c.Reason})
    if unknown:
        problems.append(f"platform_reasons: unknown reason(s) {unknown}; known: {sorted(str(r) for r in c.Reason)}")
    for w in (*cfg.slo_page_windows, *cfg.slo_ticket_windows):
        for window in (w.long, w.short):
            if window not in c.SLO_WINDOWS:
                problems.append(f"slo windows: {window} has no recording rule; use one of {list(c.SLO_WINDOWS)}")
    for name in cfg.extra_labels:
        if not _LABEL.match(name) or name in _RESERVED:
            problems.append(f"extra_labels.{name}: expected a Prometheus label name the rules do not use "
                            f"themselves (not one of {sorted(_RESERVED)})")
    if not _TAG.match(cfg.critical_tag):
        problems.append(f"critical_tag: expected a check tag (lower case, digits, _ and -), got {cfg.critical_tag!r}")
    if not cfg.runbook_base_url.startswith(("https://", "http://")):
        problems.append(f"runbook_base_url: expected an absolute http(s) URL (chat links must work), "
                        f"got {cfg.runbook_base_url!r}")
    if cfg.runbook_base_url_zh is not None and not cfg.runbook_base_url_zh.startswith(("https://", "http://")):
        problems.append(f"runbook_base_url_zh: expected an absolute http(s) URL (chat links must work), "
                        f"got {cfg.runbook_base_url_zh!r}")
    if not 0 < cfg.platform_min_share <= 1:
        problems.append(f"platform_min_share: expected a share in (0, 1], got {cfg.platform_min_share}")
    return problems
