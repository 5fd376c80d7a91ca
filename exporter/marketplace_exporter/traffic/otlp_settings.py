"""The ``traffic.otlp`` config block: how OTLP spans (``POST /v1/traces``) map onto traffic labels.

::

    traffic:
      otlp:
        account_attributes: [seller.account]   # span, then resource attributes naming the alias
        site_attributes: [seller.site]         # used when the host does not tell the site
        base_urls:                             # proxies or the simulator in front of a platform
          http://127.0.0.1:9763/shopee: shopee

Everything else (token, body size, cardinality caps) is the ``traffic:`` section's own: OTLP is a
second way into the same ingest path, not a second set of limits. A span whose attribute names an
alias that is not configured for that marketplace is counted as ``other``, as on the native path.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from marketplace_exporter.adapters import ADAPTERS
from marketplace_exporter.adapters.base import StrictModel

#: an OpenTelemetry attribute key as instrumentations write them (``seller.account``, ``tenant_id``)
AttributeKey = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$")]


class OtlpConfig(StrictModel):
    """Label sources for spans received over OTLP/HTTP."""

    #: attributes holding the ``account`` alias; the span's own attributes win over the resource's
    account_attributes: Annotated[tuple[AttributeKey, ...], Field(max_length=8)] = ("seller.account",)
    #: attributes holding the ``site`` (e.g. ``SG``) when the host alone does not tell it
    site_attributes: Annotated[tuple[AttributeKey, ...], Field(max_length=8)] = ("seller.site",)
    #: base URL (scheme://host[:port][/path]) → marketplace, for calls that go through a proxy
    base_urls: Annotated[dict[str, str], Field(max_length=64)] = Field(default_factory=dict)

    @field_validator("base_urls")
    @classmethod
    def _known_marketplaces(cls, value: dict[str, str]) -> dict[str, str]:
        for base, marketplace in value.items():
            adapter = ADAPTERS.get(marketplace)
            if adapter is None or not adapter.api_operations:
                known = ", ".join(sorted(n for n, a in ADAPTERS.items() if a.api_operations))
                raise ValueError(f"base_urls[{base!r}]: unknown marketplace {marketplace!r} (expected one of {known})")
            if not base.startswith(("http://", "https://")):
                raise ValueError(f"base_urls: {base!r} is not an http:// or https:// URL")
        return value
