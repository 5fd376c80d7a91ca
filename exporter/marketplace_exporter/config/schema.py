"""The config model, built from the adapter registry so each marketplace's credentials, sites and
operations are validated by that adapter's own models (and appear in the JSON Schema).

Shape (every key documented in ``docs/configuration.md``)::

    defaults: {interval, timeout, jitter, concurrency, concurrency_per_host, quota_budget, max_body_bytes,
               request_duration_histogram}
    accounts:
      - marketplace: amazon_sp      # picks the adapter; the rest of the entry is validated by it
        alias: us-main              # the `account` label: a name, never a seller id or token
        site: US
        base_url: ...               # optional override (sandbox, simulator)
        auth_url: ...               # optional token-endpoint override
        sandbox: false
        credentials: {...}          # the adapter's Credentials model; secrets as ${ENV}/{file}/{value}
        checks: [{operation, name?, interval?, timeout?, tags?, quota_budget?, params?}]
    http_checks: [{name, url, ..., interval?, timeout?, tags?, site?, account?}]
    tls_hosts: [{host, port?, interval?, timeout?, tags?}]
    deprecations: [{marketplace, api, removal_date}]
    traffic: {token_env, anonymous_writes, max_body_bytes, max_series_per_service, ...}  # traffic/settings.py
    deploys: {token_env, anonymous_writes, freeze_windows, grafana}   # see deploys/config.py
    accounts_files: [sellers/*.json, erp-accounts/]   # per-seller files, re-read on change
    accounts_files_poll: 5s                           # how often they are looked at
"""

from __future__ import annotations

from datetime import date
from functools import cache
from typing import Annotated, Any, Literal, Union
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, create_model

from marketplace_exporter.adapters import ADAPTERS
from marketplace_exporter.adapters.base import StrictModel
from marketplace_exporter.adapters.http import HttpCheck
from marketplace_exporter.adapters.tls import TlsParams
from marketplace_exporter.config_types import Duration, LabelValue
from marketplace_exporter.deploys.config import DeploysConfig
from marketplace_exporter.traffic.settings import TrafficConfig

Tag = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,31}$")]
Fraction = Annotated[float, Field(gt=0, le=1)]


def _no_userinfo(url: str) -> str:
    """A ``user:password@`` in an API URL would be sent, logged and traced (``/probe?debug=true``
    printed it): refused, as generic checks refuse it. The message never quotes the URL."""
    if "@" in urlsplit(url).netloc:
        raise ValueError("expected a URL without user:password@ (credentials go under credentials:, "
                         "as secrets)")
    return url


HttpUrlStr = Annotated[str, Field(pattern=r"^https?://[^\s/$.?#][^\s]*$"), AfterValidator(_no_userinfo)]
#: a glob (``sellers/*.json``) or a directory (``sellers/``: its *.yml, *.yaml and *.json files),
#: relative to the config file's directory
AccountsFilesEntry = Annotated[str, Field(min_length=1, description=(
    "accounts files: a glob such as sellers/*.json or a directory (its .yml/.yaml/.json files), "
    "relative to this file's directory; one file per seller, re-read when it changes"))]


class Defaults(StrictModel):
    """Values every check inherits unless it sets its own."""

    interval: Duration = 60.0
    timeout: Duration = 10.0
    #: each run is moved by up to ±jitter×interval so checks of one host do not fire together
    jitter: Annotated[float, Field(ge=0, le=0.5)] = 0.1
    #: probes in flight at once, all hosts together
    concurrency: Annotated[int, Field(ge=1, le=1024)] = 64
    #: probes in flight at once against one host (marketplaces count per app, not per call)
    concurrency_per_host: Annotated[int, Field(ge=1, le=256)] = 4
    #: the share of a documented rate limit the exporter may spend; the rest is production's
    quota_budget: Fraction = 0.5
    #: larger bodies are classified invalid_response without being read further
    max_body_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 1024 * 1024
    #: the longest a platform's Retry-After (or an adapter's pause) may hold a check back: one
    #: ``Retry-After: 86400`` stopped a check for a day (issue 14); longer values are cut to this
    max_retry_after: Annotated[Duration, Field(ge=1, le=86400)] = 900.0
    #: false drops marketplace_request_duration_seconds (12 series per marketplace/site/check)
    request_duration_histogram: bool = True
    #: extra CA certificates (PEM) trusted besides the system ones; changes apply on restart
    ca_file: str | None = None


class _ScheduleFields(StrictModel):
    interval: Duration | None = None
    timeout: Duration | None = None
    tags: list[Tag] = []
    quota_budget: Fraction | None = None


def _check_model(adapter_name: str) -> type[StrictModel]:
    adapter = ADAPTERS[adapter_name]
    operations = tuple(sorted(adapter.operations))
    return create_model(
        f"{_camel(adapter_name)}Check",
        __base__=_ScheduleFields,
        __doc__=f"One {adapter_name} check: which operation to probe and how often.",
        operation=(_one_of(operations), ...),
        name=(LabelValue | None, None),
        params=(adapter.Params, adapter.Params()),
    )


def _account_model(adapter_name: str) -> type[StrictModel]:
    adapter = ADAPTERS[adapter_name]
    sites = tuple(sorted(adapter.sites))
    return create_model(
        f"{_camel(adapter_name)}Account",
        __base__=StrictModel,
        __doc__=f"A {adapter_name} seller account and the checks to run with it.",
        marketplace=(_one_of((adapter_name,)), ...),
        alias=(LabelValue, ...),
        site=(_one_of(sites), ...),
        base_url=(HttpUrlStr | None, None),
        auth_url=(HttpUrlStr | None, None),
        sandbox=(bool, False),
        credentials=(adapter.Credentials, ...),
        checks=(_non_empty_list(_check_model(adapter_name)), ...),
    )


def _one_of(values: tuple[str, ...]) -> Any:
    """``Literal[*values]`` built at run time (the registry decides the values)."""
    return Literal[values]


def _non_empty_list(item: type[StrictModel]) -> Any:
    return Annotated[list[item], Field(min_length=1)]  # type: ignore[valid-type]


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


class HttpCheckConfig(HttpCheck.Params, _ScheduleFields):  # type: ignore[misc,valid-type]
    """A generic HTTP check (the seller's own ERP, order-sync health)."""

    name: LabelValue
    site: LabelValue = "global"
    account: LabelValue = "self"


class TlsHostConfig(TlsParams, _ScheduleFields):
    """A host whose TLS certificate is watched although nothing else probes it."""


class DeprecationConfig(StrictModel):
    """A dated API removal to add to (or correct in) the shipped calendar."""

    marketplace: LabelValue
    api: LabelValue
    removal_date: date


MARKETPLACE_ADAPTERS = tuple(sorted(name for name in ADAPTERS if name != HttpCheck.name))


@cache
def account_type() -> Any:
    """One ``accounts[]`` entry: a union of every adapter's account model, keyed by marketplace."""
    accounts = tuple(_account_model(name) for name in MARKETPLACE_ADAPTERS)
    return Annotated[Union[accounts], Field(discriminator="marketplace")]  # noqa: UP007


@cache
def config_model() -> type[StrictModel]:
    """The root model: built once from the registry (adding an adapter adds its account shape)."""
    account_union = account_type()
    return create_model(
        "Config",
        __base__=StrictModel,
        __doc__="marketplace-exporter configuration",
        defaults=(Defaults, Defaults()),
        accounts=(list[account_union], []),  # type: ignore[valid-type]
        http_checks=(list[HttpCheckConfig], []),
        tls_hosts=(list[TlsHostConfig], []),
        deprecations=(list[DeprecationConfig], []),
        traffic=(TrafficConfig, TrafficConfig()),
        deploys=(DeploysConfig, DeploysConfig()),
        accounts_files=(list[AccountsFilesEntry], []),
        accounts_files_poll=(Duration, 5.0),
    )


@cache
def config_shell_model() -> type[StrictModel]:
    """The root model with ``accounts`` and ``http_checks`` left as lists of anything: the loader
    validates their entries one by one while it builds their checks, so a file of 50,000 checks
    never holds 50,000 validated entries at once (config/load.py)."""
    return create_model("Config", __base__=config_model(), accounts=(list[Any], []),
                        http_checks=(list[Any], []))


def json_schema() -> dict[str, Any]:
    """JSON Schema of the config file for editors (``marketplace-exporter config-schema``)."""
    schema = config_model().model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "marketplace-exporter configuration"
    return schema
