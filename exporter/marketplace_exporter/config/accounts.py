"""One validated seller account → the checks the engine runs, with every default resolved.

Shared by the config file's own ``accounts:`` and the per-seller accounts files, so an account
means the same wherever it is written. Semantic problems (a secret that cannot be read now, a
timeout longer than the interval, a duplicate check name) are reported through ``error`` with the
key path they concern; the caller decides the file and the line.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from marketplace_exporter.adapters import ADAPTERS
from marketplace_exporter.config.specs import CheckSpec
from marketplace_exporter.config.yaml_loading import KeyPath
from marketplace_exporter.credentials import TOKEN_FILES
from marketplace_exporter.header_values import secret_problem
from marketplace_exporter.secrets import Secret, SecretUnavailable, secrets_checked

#: keys whose values are never quoted in an error (they may hold secrets)
SECRET_KEYS = ("credentials", "headers")


@dataclass(frozen=True)
class AccountContext:
    """What an account inherits from the config file: its ``defaults``."""

    defaults: Any
    #: whether ``defaults.interval`` was written (else each operation's own default applies)
    interval_configured: bool
    #: the ``defaults`` section as canonical JSON: part of every check's fingerprint
    raw_defaults: str

    @classmethod
    def of(cls, defaults: Any, raw: dict[str, Any]) -> AccountContext:
        raw_defaults = raw.get("defaults")
        return cls(defaults, isinstance(raw_defaults, dict) and "interval" in raw_defaults,
                   json.dumps(raw_defaults, sort_keys=True, default=str))


def resolve_account(account: Any, raw_entry: Any, path: KeyPath, context: AccountContext,
                    error: Callable[[KeyPath, str], None]) -> list[CheckSpec]:
    """The account's checks; problems go to ``error(key path, message)``."""
    defaults = context.defaults
    adapter = ADAPTERS[account.marketplace]
    for where, refused in adapter.account_problems(account.site, account.credentials,
                                                   [check.operation for check in account.checks]):
        error(path + where, refused)
    for field_name, secret in named_secrets(account.credentials):
        if (problem := secret.check_available() or secret_problem(secret)) is not None:
            error(path + ("credentials", field_name), problem)
    token_file = getattr(account.credentials, "token_file", None)
    if isinstance(token_file, str) and secrets_checked():
        try:
            TOKEN_FILES.read(token_file)
        except SecretUnavailable as exc:
            error(path + ("credentials", "token_file"), str(exc))
    checks: list[CheckSpec] = []
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
        interval = check.interval or (defaults.interval if context.interval_configured
                                      else operation.default_interval_seconds)
        timeout = check.timeout or defaults.timeout
        if timeout > interval:
            error(check_path + ("timeout",), f"expected a timeout <= interval ({interval:g}s), got {timeout:g}s")
        checks.append(CheckSpec(
            marketplace=account.marketplace, site=account.site, account=account.alias,
            name=check_name, adapter=adapter, operation=operation, interval=interval,
            timeout=timeout, jitter=defaults.jitter,
            quota_budget=check.quota_budget or defaults.quota_budget, tags=tuple(check.tags),
            base_url=account.base_url, auth_url=account.auth_url, sandbox=account.sandbox,
            credentials=account.credentials, params=check.params,
            fingerprint=digest(context.raw_defaults, raw_entry, check_index)))
    return checks


def digest(raw_defaults: str, entry: Any, check_index: int | None) -> str:
    """Fingerprint of the text behind one check: a reload restarts only checks whose text changed.

    ``entry`` is the check's config entry, or a string that already identifies its text (an
    accounts file's digest: canonical JSON of 50,000 entries would cost seconds)."""
    if isinstance(entry, str):
        return hashlib.sha256(f"{raw_defaults}\0{entry}\0{check_index}".encode()).hexdigest()[:16]
    payload = [raw_defaults, entry if check_index is None else {**entry, "checks": entry["checks"][check_index]}]
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def named_secrets(model: Any) -> Iterator[tuple[str, Secret]]:
    """(key, secret) for every :class:`Secret` field of ``model`` and of its mapping fields."""
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


__all__ = ["SECRET_KEYS", "AccountContext", "digest", "named_secrets", "resolve_account"]
