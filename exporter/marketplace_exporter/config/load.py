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
from collections.abc import Iterator
from functools import cache
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
    config_shell_model,
)
from marketplace_exporter.config.specs import AccountsFilesSettings, CheckSpec, LoadedConfig
from marketplace_exporter.config.yaml_loading import (
    ConfigError,
    KeyPath,
    LineMap,
    pydantic_errors,
    read_document,
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
    data, lines = read_document(name, text)
    errors = list(lines.errors)
    raw = require_mapping(name, data)
    schema = _SchemaErrors(lines)
    defaults, tls_hosts, deprecations = _validate(raw, schema)
    context = AccountContext.of(defaults, raw)
    semantic: list[str] = []
    checks = _account_checks(raw, lines, context, schema, semantic)
    checks += _http_checks(defaults, raw, lines, schema, semantic)
    checks += _tls_checks(defaults, tls_hosts, raw, lines, semantic)
    errors += schema.in_file_order() + semantic
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


class _SchemaErrors:
    """Schema errors, reported in the order one validation of the whole file would give them
    (by section, then entry), although ``accounts`` and ``http_checks`` are validated entry by entry."""

    _SECTIONS = ("defaults", "accounts", "http_checks", "tls_hosts", "deprecations", "traffic", "deploys",
                 "accounts_files", "accounts_files_poll")

    def __init__(self, lines: LineMap) -> None:
        self.lines = lines
        self._found: list[tuple[int, int, int, str]] = []

    def add(self, exc: ValidationError, prefix: KeyPath = ()) -> None:
        messages = pydantic_errors(exc, self.lines, secret_keys=SECRET_KEYS, unknown_key=UNKNOWN_KEY, prefix=prefix,
                                   strip_tag=ADAPTERS)
        for err, message in zip(exc.errors(), messages, strict=True):
            loc = prefix + tuple(err["loc"])
            section = self._SECTIONS.index(loc[0]) if loc and loc[0] in self._SECTIONS else len(self._SECTIONS)
            entry = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else -1
            self._found.append((section, entry, len(self._found), message))

    def bad(self) -> set[KeyPath]:
        """(section,) or (section, index) of every error: what has one is not used."""
        found: set[KeyPath] = set()
        for section, entry, _, _ in self._found:
            if section < len(self._SECTIONS):
                found.add((self._SECTIONS[section],) if entry < 0 else (self._SECTIONS[section], entry))
        return found

    def in_file_order(self) -> list[str]:
        return [message for *_, message in sorted(self._found)]


def _validate(raw: dict[str, Any], schema: _SchemaErrors) -> tuple[Any, Entries, Entries]:
    """Validate the file but its ``accounts`` and ``http_checks`` entries (those are validated one by
    one as their checks are built: 50,000 validated entries were never needed at once). When parts
    are invalid, keep the valid ones so their semantic errors (unset env vars, timeouts,
    duplicates) are reported too. Returns defaults, tls_hosts and deprecations."""
    try:
        model: Any = config_shell_model().model_validate(raw)
    except ValidationError as exc:
        schema.add(exc)
        bad = schema.bad()
        defaults = Defaults()
        if ("defaults",) not in bad:
            defaults = Defaults.model_validate(raw.get("defaults") or {})
        return (defaults, _entries(raw, "tls_hosts", TypeAdapter(TlsHostConfig), bad),
                _entries(raw, "deprecations", TypeAdapter(DeprecationConfig), bad))
    return model.defaults, list(enumerate(model.tls_hosts)), list(enumerate(model.deprecations))


def _entries(raw: dict[str, Any], key: str, adapter: TypeAdapter[Any], bad: set[KeyPath]) -> Entries:
    entries = raw.get(key)
    if not isinstance(entries, list):
        return []
    return [(index, adapter.validate_python(entry)) for index, entry in enumerate(entries)
            if (key, index) not in bad and (key,) not in bad]


def _validated(raw: dict[str, Any], key: str, adapter: TypeAdapter[Any],
               schema: _SchemaErrors) -> Iterator[tuple[int, Any]]:
    """``raw[key]``'s entries validated one at a time (each dropped once its checks are built);
    an invalid entry is reported and skipped. Not a list: the shell validation reported it."""
    entries = raw.get(key)
    if not isinstance(entries, list):
        return
    for index, entry in enumerate(entries):
        try:
            yield index, adapter.validate_python(entry)
        except ValidationError as exc:
            schema.add(exc, (key, index))


def _account_checks(raw: dict[str, Any], lines: LineMap, context: AccountContext, schema: _SchemaErrors,
                    errors: list[str]) -> list[CheckSpec]:
    checks: list[CheckSpec] = []

    def error(path: KeyPath, message: str) -> None:
        errors.append(lines.error(path, message))

    seen: dict[tuple[str, str], int] = {}
    for index, account in _validated(raw, "accounts", _account_adapter(), schema):
        path: KeyPath = ("accounts", index)
        key = (account.marketplace, account.alias)
        if key in seen:
            error(path + ("alias",), f"duplicate alias {account.alias!r} for {account.marketplace} "
                  f"(first at accounts[{seen[key]}])")
        seen[key] = index
        checks += resolve_account(account, raw["accounts"][index], path, context, error)
    return checks


@cache
def _account_adapter() -> TypeAdapter[Any]:
    return TypeAdapter(account_type())


@cache
def _http_adapter() -> TypeAdapter[Any]:
    return TypeAdapter(HttpCheckConfig)


def _http_checks(defaults: Any, raw: dict[str, Any], lines: LineMap, schema: _SchemaErrors,
                 errors: list[str]) -> list[CheckSpec]:
    checks: list[CheckSpec] = []
    raw_defaults = json.dumps(raw.get("defaults"), sort_keys=True, default=str)
    seen: set[tuple[str, str]] = set()
    http = ADAPTERS[HttpCheck.name]
    for index, entry in _validated(raw, "http_checks", _http_adapter(), schema):
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
        params = _params_of(entry)
        checks.append(CheckSpec(
            marketplace=HttpCheck.name, site=entry.site, account=entry.account, name=entry.name,
            adapter=http, operation=http.operations["request"], interval=interval, timeout=timeout,
            jitter=defaults.jitter, quota_budget=entry.quota_budget or defaults.quota_budget,
            tags=tuple(entry.tags), base_url=None, auth_url=None, sandbox=False, credentials=None,
            params=params, fingerprint=digest(raw_defaults, raw["http_checks"][index], None)))
    return checks


_PARAM_FIELDS = tuple(HttpCheck.Params.model_fields)
#: one ``fields set`` per distinct set of written keys, shared by the params that have it
_FIELDS_SETS: dict[frozenset[str], set[str]] = {}


def _params_of(entry: Any) -> Any:
    """The check's request params: the entry's already validated values (it is a
    ``HttpCheck.Params`` with schedule fields added) without validating them a second time. The
    ``fields set`` of a frozen model is never changed, so params written with the same keys share
    one: a set per check was ~470 bytes, 23 MB at 50,000 checks."""
    written = frozenset(entry.model_fields_set).intersection(_PARAM_FIELDS)
    fields_set = _FIELDS_SETS.setdefault(written, set(written))
    return HttpCheck.Params.model_construct(fields_set, **{key: getattr(entry, key) for key in _PARAM_FIELDS})


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
