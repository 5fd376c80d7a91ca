"""Read a YAML config file into the checks the engine runs, or fail with every error at once.

Each error names the file, the line, the key path and what was expected versus what was found,
e.g. ``demo.yml:14: accounts[0].site: expected one of 'AE', 'AU', ..., got 'USA'``. Values under
``credentials`` and ``headers`` are never quoted: they may be secrets.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from marketplace_exporter.adapters import ADAPTERS, Adapter
from marketplace_exporter.adapters.http import HttpCheck
from marketplace_exporter.adapters.tls import TlsCheck, TlsParams
from marketplace_exporter.config.schema import (
    Defaults,
    DeprecationConfig,
    HttpCheckConfig,
    TlsHostConfig,
    account_type,
    config_model,
)
from marketplace_exporter.credentials import TOKEN_FILES
from marketplace_exporter.deploys.config import DeploysConfig
from marketplace_exporter.deprecations import Deprecation, calendar
from marketplace_exporter.model import Operation
from marketplace_exporter.secrets import Secret, SecretUnavailable
from marketplace_exporter.traffic.settings import TrafficConfig

Path_ = tuple[str | int, ...]
_SECRET_KEYS = ("credentials", "headers")


class ConfigError(Exception):
    """The config cannot be used; ``errors`` lists every problem found, each fully located."""

    def __init__(self, errors: Sequence[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = list(errors)


@dataclass(frozen=True)
class CheckSpec:
    """One configured check with every default resolved: what the engine schedules."""

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
    credentials: Any = field(compare=False)
    params: Any = field(compare=False)
    #: digest of the config text behind this check: a reload restarts only checks whose digest changed
    fingerprint: str = ""

    @cached_property
    def id(self) -> str:
        """Stable identifier used by ``/probe?check=``: ``marketplace/account/check``."""
        return f"{self.marketplace}/{self.account}/{self.name}"

    @cached_property
    def labels(self) -> tuple[str, str, str, str]:
        return (self.marketplace, self.site, self.account, self.name)


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
    #: export marketplace_request_duration_seconds (``defaults.request_duration_histogram``)
    request_duration_histogram: bool = True

    def by_id(self) -> dict[str, CheckSpec]:
        return {check.id: check for check in self.checks}


def load_config(path: str | Path, *, text: str | None = None) -> LoadedConfig:
    """Parse and validate; raise :class:`ConfigError` listing every problem."""
    name = str(path)
    root, raw = read_yaml(name, text)
    lines: dict[Path_, int] = {}
    errors: list[str] = []
    if root is not None:
        _walk(root, (), lines, errors, name)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError([f"{name}:1: (root): expected a mapping of keys, got {type(raw).__name__}"])
    defaults, accounts, http_checks, tls_hosts, deprecations = _validate(raw, lines, name, errors)
    checks = _resolve_checks(defaults, accounts, http_checks, raw, lines, name, errors)
    checks += _tls_checks(defaults, tls_hosts, raw, lines, name, errors)
    if defaults.ca_file is not None and not Path(defaults.ca_file).is_file():
        errors.append(f"{name}:{_line(lines, ('defaults', 'ca_file'))}: defaults.ca_file: "
                      f"expected a readable PEM file, got {defaults.ca_file!r}")
    if errors:
        raise ConfigError(errors)
    return LoadedConfig(
        path=name, checks=tuple(checks), max_body_bytes=defaults.max_body_bytes,
        concurrency=defaults.concurrency, concurrency_per_host=defaults.concurrency_per_host,
        ca_file=defaults.ca_file,
        deprecations=calendar(tuple(Deprecation(d.marketplace, d.api, d.removal_date, "config")
                                    for _, d in deprecations)),
        traffic=TrafficConfig.model_validate(raw.get("traffic") or {}),
        deploys=DeploysConfig.model_validate(raw.get("deploys") or {}),
        request_duration_histogram=defaults.request_duration_histogram,
    )


Entries = list[tuple[int, Any]]


def _validate(raw: dict[str, Any], lines: dict[Path_, int], name: str,
              errors: list[str]) -> tuple[Any, Entries, Entries, Entries, Entries]:
    """Validate the whole file; when parts are invalid, keep validating the valid entries one by
    one so their semantic errors (unset env vars, timeouts, duplicates) are reported too."""
    try:
        model: Any = config_model().model_validate(raw)
    except ValidationError as exc:
        errors.extend(_format_pydantic(exc, lines, name))
        bad = {tuple(err["loc"][:2]) for err in exc.errors()}
        defaults = Defaults()
        if ("defaults",) not in {loc[:1] for loc in bad}:
            defaults = Defaults.model_validate(raw.get("defaults") or {})
        return (defaults, _entries(raw, "accounts", TypeAdapter(account_type()), bad),
                _entries(raw, "http_checks", TypeAdapter(HttpCheckConfig), bad),
                _entries(raw, "tls_hosts", TypeAdapter(TlsHostConfig), bad),
                _entries(raw, "deprecations", TypeAdapter(DeprecationConfig), bad))
    return (model.defaults, list(enumerate(model.accounts)), list(enumerate(model.http_checks)),
            list(enumerate(model.tls_hosts)), list(enumerate(model.deprecations)))


def _tls_checks(defaults: Any, entries: Entries, raw: dict[str, Any], lines: dict[Path_, int], name: str,
                errors: list[str]) -> list[CheckSpec]:
    """``tls_hosts`` become checks of the tls adapter (hourly by default: certificates change slowly)."""
    checks: list[CheckSpec] = []
    raw_defaults = json.dumps(raw.get("defaults"), sort_keys=True, default=str)
    seen: set[str] = set()
    adapter = TlsCheck()
    for index, entry in entries:
        label = entry.host if entry.port == 443 else f"{entry.host}:{entry.port}"
        if label in seen:
            errors.append(f"{name}:{_line(lines, ('tls_hosts', index))}: tls_hosts[{index}]: duplicate host {label!r}")
        seen.add(label)
        interval = entry.interval or adapter.operations["certificate"].default_interval_seconds
        checks.append(CheckSpec(
            marketplace=TlsCheck.name, site="global", account="self", name=label, adapter=adapter,
            operation=adapter.operations["certificate"], interval=interval,
            timeout=entry.timeout or defaults.timeout, jitter=defaults.jitter,
            quota_budget=entry.quota_budget or defaults.quota_budget, tags=tuple(entry.tags), base_url=None,
            auth_url=None, sandbox=False, credentials=None,
            params=TlsParams(host=entry.host, port=entry.port),
            fingerprint=_digest(raw_defaults, raw["tls_hosts"][index], None)))
    return checks


def _entries(raw: dict[str, Any], key: str, adapter: TypeAdapter[Any],
             bad: set[tuple[Any, ...]]) -> list[tuple[int, Any]]:
    entries = raw.get(key)
    if not isinstance(entries, list):
        return []
    return [(index, adapter.validate_python(entry)) for index, entry in enumerate(entries)
            if (key, index) not in bad and (key,) not in bad]


def _resolve_checks(defaults: Any, accounts: list[tuple[int, Any]], http_checks: list[tuple[int, Any]],
                    raw: dict[str, Any], lines: dict[Path_, int], name: str,
                    errors: list[str]) -> list[CheckSpec]:
    checks: list[CheckSpec] = []
    raw_defaults = json.dumps(raw.get("defaults"), sort_keys=True, default=str)

    def error(path: Path_, message: str) -> None:
        errors.append(f"{name}:{_line(lines, path)}: {_dotted(path)}: {message}")

    interval_configured = isinstance(raw.get("defaults"), dict) and "interval" in raw["defaults"]
    seen_accounts: dict[tuple[str, str], int] = {}
    for index, account in accounts:
        path: Path_ = ("accounts", index)
        key = (account.marketplace, account.alias)
        if key in seen_accounts:
            error(path + ("alias",), f"duplicate alias {account.alias!r} for {account.marketplace} "
                  f"(first at accounts[{seen_accounts[key]}])")
        seen_accounts[key] = index
        adapter = ADAPTERS[account.marketplace]
        for field_name, secret in _named_secrets(account.credentials):
            if (problem := secret.check_available()) is not None:
                error(path + ("credentials", field_name), problem)
        token_file = getattr(account.credentials, "token_file", None)
        if isinstance(token_file, str):
            try:
                TOKEN_FILES.read(token_file)
            except SecretUnavailable as exc:
                error(path + ("credentials", "token_file"), str(exc))
        seen_checks: set[str] = set()
        for check_index, check in enumerate(account.checks):
            check_path = path + ("checks", check_index)
            check_name = check.name or check.operation
            if check_name in seen_checks:
                error(check_path, f"duplicate check name {check_name!r} in account {account.alias!r}")
            seen_checks.add(check_name)
            operation = adapter.operations[check.operation]
            # the operation's own default (e.g. eBay's 5,000-a-day Analytics API: 15 min) unless the
            # config says otherwise for this check or for every check
            interval = check.interval or (defaults.interval if interval_configured
                                          else operation.default_interval_seconds)
            timeout = check.timeout or defaults.timeout
            if timeout > interval:
                error(check_path + ("timeout",), f"expected a timeout <= interval ({interval:g}s), "
                      f"got {timeout:g}s")
            fingerprint = _digest(raw_defaults, raw["accounts"][index], check_index)
            checks.append(CheckSpec(
                marketplace=account.marketplace, site=account.site, account=account.alias,
                name=check_name, adapter=adapter, operation=operation, interval=interval,
                timeout=timeout, jitter=defaults.jitter,
                quota_budget=check.quota_budget or defaults.quota_budget, tags=tuple(check.tags),
                base_url=account.base_url, auth_url=account.auth_url, sandbox=account.sandbox,
                credentials=account.credentials, params=check.params, fingerprint=fingerprint))
    seen_http: set[tuple[str, str]] = set()
    http = ADAPTERS[HttpCheck.name]
    for index, entry in http_checks:
        path = ("http_checks", index)
        if (entry.account, entry.name) in seen_http:
            error(path + ("name",), f"duplicate http check name {entry.name!r}")
        seen_http.add((entry.account, entry.name))
        for header, secret in _named_secrets(entry):
            if (problem := secret.check_available()) is not None:
                error(path + ("headers", header), problem)
        interval = entry.interval or defaults.interval
        timeout = entry.timeout or defaults.timeout
        if timeout > interval:
            error(path + ("timeout",), f"expected a timeout <= interval ({interval:g}s), got {timeout:g}s")
        params = HttpCheck.Params.model_validate(
            {key: getattr(entry, key) for key in HttpCheck.Params.model_fields})
        checks.append(CheckSpec(
            marketplace=HttpCheck.name, site=entry.site, account=entry.account, name=entry.name,
            adapter=http, operation=http.operations["request"], interval=interval, timeout=timeout,
            jitter=defaults.jitter, quota_budget=entry.quota_budget or defaults.quota_budget,
            tags=tuple(entry.tags), base_url=None, auth_url=None, sandbox=False, credentials=None,
            params=params, fingerprint=_digest(raw_defaults, raw["http_checks"][index], None)))
    return checks


def _digest(raw_defaults: str, entry: Any, check_index: int | None) -> str:
    payload = [raw_defaults, entry if check_index is None else {**entry, "checks": entry["checks"][check_index]}]
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _named_secrets(model: Any) -> Iterator[tuple[str, Secret]]:
    if model is None:
        return
    for key in type(model).model_fields:
        value = getattr(model, key)
        if isinstance(value, Secret):
            yield key, value
        elif isinstance(value, dict):
            for sub, item in value.items():
                if isinstance(item, Secret):
                    yield str(sub), item


def read_yaml(name: str, text: str | None = None) -> tuple[yaml.Node | None, Any]:
    """Read (unless ``text`` is given) and parse a YAML config file: the node tree for line numbers
    and the data. Unreadable files and YAML syntax errors become a :class:`ConfigError` naming the
    file (and line). Shared by every config file we read (exporter, bridge)."""
    if text is None:
        try:
            text = Path(name).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError([f"{name}: cannot read config file: {exc.strerror}"]) from None
    try:
        return _parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark else name
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{where}: invalid YAML: {problem}"]) from None


def _parse_yaml(text: str) -> tuple[yaml.Node | None, Any]:
    """One pass (libyaml when available): the node tree for line numbers and the data built from
    that same tree. Parsing twice in pure Python cost ~1.7 ms per check, blocking reloads."""
    loader_class = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        return node, (loader.construct_document(node) if node is not None else None)
    finally:
        loader.dispose()


# --- locating errors ----------------------------------------------------------------------------

def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int], errors: list[str], name: str) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                errors.append(f"{name}:{key_node.start_mark.line + 1}: {_dotted(path + (key,))}: "
                              "duplicate key (YAML would silently keep only the last one)")
            seen.add(key)
            _walk(value_node, path + (key,), lines, errors, name)
            lines[path + (key,)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, path + (index,), lines, errors, name)


def _line(lines: dict[Path_, int], path: Path_) -> int:
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path, 1)


def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(root)"


def _format_pydantic(exc: ValidationError, lines: dict[Path_, int], name: str) -> list[str]:
    messages = []
    for err in exc.errors(include_url=False):
        path = _strip_union_tags(tuple(err["loc"]))
        secret = any(part in _SECRET_KEYS for part in path if isinstance(part, str))
        kind = err["type"]
        if kind == "extra_forbidden":
            text = "unknown key (see `marketplace-exporter config-schema` for the allowed keys)"
        elif kind == "missing":
            text = "missing required key"
        elif kind == "union_tag_invalid":
            text = f"{_expected(err['msg'])}, got {_short(err.get('ctx', {}).get('tag'))}"
        else:
            text = _expected(err["msg"])
            if kind != "value_error":
                text += f", got {_got(err.get('input'), secret)}"
        messages.append(f"{name}:{_line(lines, path)}: {_dotted(path)}: {text}")
    return messages


def _strip_union_tags(loc: Path_) -> Path_:
    """pydantic puts the discriminator value into the path (accounts.0.amazon_sp.site): drop it."""
    if len(loc) >= 3 and loc[0] == "accounts" and isinstance(loc[1], int) and loc[2] in ADAPTERS:
        return loc[:2] + loc[3:]
    return loc


def _expected(msg: str) -> str:
    msg = msg.removeprefix("Value error, ")
    if msg.startswith("Input should be "):
        return "expected " + msg.removeprefix("Input should be ")
    if msg.startswith("Input tag ") and "does not match any of the expected tags" in msg:
        return "expected marketplace " + msg.split("expected tags: ", 1)[-1]
    if msg.startswith("String should match pattern"):
        return "expected " + msg.replace("String should match pattern", "a string matching")
    return msg if msg[1:2].isupper() else msg[:1].lower() + msg[1:]


def _got(value: Any, secret: bool) -> str:
    """What was found, without ever quoting a possible secret or a whole mapping."""
    if secret or isinstance(value, dict | list):
        return f"a {type(value).__name__}" + (" (value not shown)" if secret else "")
    return _short(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
