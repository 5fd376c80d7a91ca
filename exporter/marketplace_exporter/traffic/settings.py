"""The ``traffic:`` config section: how the exporter accepts production traffic reports.

::

    traffic:
      token_env: MARKETPLACE_EXPORTER_TRAFFIC_TOKEN   # the Bearer token's variable (default)
      anonymous_writes: never     # never | loopback (no token set: 127.0.0.1 only) | always
      max_body_bytes: 4194304     # a batch larger than this is refused with 413
      max_series_per_service: 2000  # label combinations per reporting service; beyond: folded
      max_services: 20            # distinct ``service`` values; reports from more are refused
      retention: 6h               # time-bucketed error ratios kept for the deploy gate
      otlp: {account_attributes: [seller.account]}  # OTLP spans at /v1/traces (docs/otlp.md)

The token is a separate variable from the deploy API's on purpose: every ERP host holds the traffic
token, and it must not be able to post deploy markers. The bound on label values is the rest of the
config: aliases of the configured ``accounts`` per marketplace, the adapters' sites, operations and
codes; anything else is folded into ``other``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from marketplace_exporter.adapters.base import StrictModel
from marketplace_exporter.config_types import AnonymousWritesSetting, Duration
from marketplace_exporter.traffic.otlp_settings import OtlpConfig

DEFAULT_TRAFFIC_TOKEN_ENV = "MARKETPLACE_EXPORTER_TRAFFIC_TOKEN"


class TrafficConfig(StrictModel):
    """Production traffic ingestion (``POST /api/v1/traffic``)."""

    token_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]{0,127}$")] = DEFAULT_TRAFFIC_TOKEN_ENV
    #: ``true``/``false`` (this section's first spelling) still mean ``always``/``never``
    anonymous_writes: AnonymousWritesSetting = "never"
    max_body_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 4 * 1024 * 1024
    max_series_per_service: Annotated[int, Field(ge=10, le=100_000)] = 2000
    max_services: Annotated[int, Field(ge=1, le=1000)] = 20
    retention: Duration = 6 * 3600.0
    #: label sources for spans sent to ``POST /v1/traces`` (docs/otlp.md)
    otlp: OtlpConfig = OtlpConfig()
