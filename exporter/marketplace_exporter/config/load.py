"""Read a YAML config file into the checks the engine runs, or fail with every error at once.

Each error names the file, the line, the key path and what was expected versus what was found,
e.g. ``demo.yml:14: accounts[0].site: expected one of 'AE', 'AU', ..., got 'USA'``. Values under
``credentials`` and ``headers`` are never quoted: they may be secrets.

``accounts_files:`` adds the accounts of per-seller files (:mod:`.accounts_files`). They are read
through an :class:`~.accounts_files.AccountsFiles` the caller may keep between loads (the running
exporter does: a broken file then keeps its last good version); without one, every file must be
valid (``check-config``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from marketplace_exporter.adapters import ADAPTERS
from marketplace_exporter.adapters.http import HttpCheck
from marketplace_exporter.adapters.tls import TlsCheck, TlsParams
from marketplace_exporter.config.accounts import (
    SECRET_KEYS,
    AccountContext,
    digest,
    named_secrets,
    resolve_account,
)
from marketplace_exporter.config.accounts_files import AccountsFiles
from marketplace_exporter.config.schema import (
    Defaults,
    DeprecationConfig,
    HttpCheckConfig,
    TlsHostConfig,
    account_type,
    config_model,
)
from marketplace_exporter.config.specs import AccountsFilesSettings, CheckSpec, LoadedConfig
from marketplace_exporter.config.yaml_loading import (
    ConfigError,
    KeyPath,
    LineMap,
    pydantic_errors,
    read_yaml,
    require_mapping,
)
from marketplace_exporter.config_types import Duration
from marketplace_exporter.deploys.config import DeploysConfig
from marketplace_exporter.deprecations import Deprecation, calendar
from marketplace_exporter.header_values import secret_problem
from marketplace_exporter.secrets import secrets_checked
from marketplace_exporter.traffic.settings import TrafficConfig

UNKNOWN_KEY = "unknown key (see `marketplace-exporter config-schema` for the allowed keys)"


def load_config(path: str | Path, *, text: str | None = None, accounts: AccountsFiles | None = None,
                strict_accounts: bool | None = None) -> LoadedConfig:
    """Parse and validate; raise :class:`ConfigError` listing every problem.

    With ``accounts`` (kept by the caller between loads), a broken accounts file is reported there
    and its last good version is used; without it (or with ``strict_accounts``), a broken accounts
    file is an error here."""
    name = str(path)
    root, data = read_yaml(name, text)
    lines = LineMap.of(name, root)
    errors = list(lines.errors)
    raw = require_mapping(name, data)
    defaults, accounts_entries, http_checks, tls_hosts, deprecations = _validate(raw, lines, errors)
    context = AccountContext.of(defaults, raw)
    checks = _account_checks(accounts_entries, raw, lines, context, errors)
    checks += _http_checks(defaults, http_checks, raw, lines, errors)
    checks += _tls_checks(defaults, tls_hosts, raw, lines, errors)
    if defaults.ca_file is not None and secrets_checked() and not Path(defaults.ca_file).is_file():
        errors.append(lines.error(("defaults", "ca_file"),
                                  f"expected a readable PEM file, got {defaults.ca_file!r}"))
    settings = _accounts_files_settings(raw, name)
    file_checks: tuple[CheckSpec, ...] = ()
    if settings.patterns and not errors:
        files = accounts if accounts is not None else AccountsFiles(quiet=True)
        files.scan(settings, context, {(check.marketplace, check.account) for check in checks})
        file_checks = files.file_checks
        if strict_accounts or (strict_accounts is None and accounts is None):
            for key, problems in sorted(files.broken().items()):
                if key in settings.patterns:  # an entry of this file (a directory that is not there)
                    errors += [lines.error(("accounts_files", settings.patterns.index(key)), p) for p in problems]
                else:
                    errors += problems
    if errors:
        raise ConfigError(errors)
    own_checks = tuple(checks)
    return LoadedConfig(
        path=name, checks=own_checks + file_checks, max_body_bytes=defaults.max_body_bytes,
        concurrency=defaults.concurrency, concurrency_per_host=defaults.concurrency_per_host,
        ca_file=defaults.ca_file,
        deprecations=calendar(tuple(Deprecation(d.marketplace, d.api, d.removal_date, "config")
                                    for _, d in deprecations)),
        traffic=TrafficConfig.model_validate(raw.get("traffic") or {}),
        deploys=DeploysConfig.model_validate(raw.get("deploys") or {}),
        accounts_files=settings, own_checks=own_checks, account_context=context,
        request_duration_histogram=defaults.request_duration_histogram,
        max_retry_after=defaults.max_retry_after,
    )


def _accounts_files_settings(raw: dict[str, Any], name: str) -> AccountsFilesSettings:
    """The ``accounts_files`` entries and poll interval (already validated with the whole file;
    an invalid value has been reported, so this only falls back to keep going)."""
    patterns = raw.get("accounts_files")
    try:
        poll = TypeAdapter(Duration).validate_python(raw.get("accounts_files_poll", 5.0))
    except ValidationError:
        poll = 5.0
    return AccountsFilesSettings(tuple(p for p in patterns if isinstance(p, str)) if isinstance(patterns, list) else (),
                                 str(Path(name).parent), poll)


Entries = list[tuple[int, Any]]


def _validate(raw: dict[str, Any], lines: LineMap, errors: list[str]) -> tuple[Any, Entries, Entries, Entries, Entries]:
    """Validate the whole file; when parts are invalid, keep validating the valid entries one by
    one so their semantic errors (unset env vars, timeouts, duplicates) are reported too."""
    try:
        model: Any = config_model().model_validate(raw)
    except ValidationError as exc:
        errors.extend(pydantic_errors(exc, lines, secret_keys=SECRET_KEYS, unknown_key=UNKNOWN_KEY,
                                      strip_tag=ADAPTERS))
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


def _entries(raw: dict[str, Any], key: str, adapter: TypeAdapter[Any], bad: set[tuple[Any, ...]]) -> Entries:
    entries = raw.get(key)
    if not isinstance(entries, list):
        return []
    return [(index, adapter.validate_python(entry)) for index, entry in enumerate(entries)
            if (key, index) not in bad and (key,) not in bad]


def _account_checks(accounts: Entries, raw: dict[str, Any], lines: LineMap, context: AccountContext,
                    errors: list[str]) -> list[CheckSpec]:
    checks: list[CheckSpec] = []

    def error(path: KeyPath, message: str) -> None:
        errors.append(lines.error(path, message))

    seen: dict[tuple[str, str], int] = {}
    for index, account in accounts:
        path: KeyPath = ("accounts", index)
        key = (account.marketplace, account.alias)
        if key in seen:
            error(path + ("alias",), f"duplicate alias {account.alias!r} for {account.marketplace} "
                  f"(first at accounts[{seen[key]}])")
        seen[key] = index
        checks += resolve_account(account, raw["accounts"][index], path, context, error)
    return checks


def _http_checks(defaults: Any, entries: Entries, raw: dict[str, Any], lines: LineMap,
                 errors: list[str]) -> list[CheckSpec]:
    checks: list[CheckSpec] = []
    raw_defaults = json.dumps(raw.get("defaults"), sort_keys=True, default=str)
    seen: set[tuple[str, str]] = set()
    http = ADAPTERS[HttpCheck.name]
    for index, entry in entries:
        path: KeyPath = ("http_checks", index)
        if (entry.account, entry.name) in seen:
            errors.append(lines.error(path + ("name",), f"duplicate http check name {entry.name!r}"))
        seen.add((entry.account, entry.name))
        for header, secret in named_secrets(entry):
            if (problem := secret.check_available() or secret_problem(secret)) is not None:
                errors.append(lines.error(path + ("headers", header), problem))
        interval = entry.interval or defaults.interval
        timeout = entry.timeout or defaults.timeout
        if timeout > interval:
            errors.append(lines.error(path + ("timeout",),
                                      f"expected a timeout <= interval ({interval:g}s), got {timeout:g}s"))
        params = HttpCheck.Params.model_validate({key: getattr(entry, key) for key in HttpCheck.Params.model_fields})
        checks.append(CheckSpec(
            marketplace=HttpCheck.name, site=entry.site, account=entry.account, name=entry.name,
            adapter=http, operation=http.operations["request"], interval=interval, timeout=timeout,
            jitter=defaults.jitter, quota_budget=entry.quota_budget or defaults.quota_budget,
            tags=tuple(entry.tags), base_url=None, auth_url=None, sandbox=False, credentials=None,
            params=params, fingerprint=digest(raw_defaults, raw["http_checks"][index], None)))
    return checks


def _tls_checks(defaults: Any, entries: Entries, raw: dict[str, Any], lines: LineMap,
                errors: list[str]) -> list[CheckSpec]:
    """``tls_hosts`` become checks of the tls adapter (hourly by default: certificates change slowly)."""
    checks: list[CheckSpec] = []
    raw_defaults = json.dumps(raw.get("defaults"), sort_keys=True, default=str)
    seen: set[str] = set()
    adapter = TlsCheck()
    for index, entry in entries:
        label = entry.host if entry.port == 443 else f"{entry.host}:{entry.port}"
        if label in seen:
            errors.append(lines.error(("tls_hosts", index), f"duplicate host {label!r}"))
        seen.add(label)
        interval = entry.interval or adapter.operations["certificate"].default_interval_seconds
        checks.append(CheckSpec(
            marketplace=TlsCheck.name, site="global", account="self", name=label, adapter=adapter,
            operation=adapter.operations["certificate"], interval=interval,
            timeout=entry.timeout or defaults.timeout, jitter=defaults.jitter,
            quota_budget=entry.quota_budget or defaults.quota_budget, tags=tuple(entry.tags), base_url=None,
            auth_url=None, sandbox=False, credentials=None,
            params=TlsParams(host=entry.host, port=entry.port),
            fingerprint=digest(raw_defaults, raw["tls_hosts"][index], None)))
    return checks


__all__ = ["CheckSpec", "ConfigError", "LoadedConfig", "load_config"]
